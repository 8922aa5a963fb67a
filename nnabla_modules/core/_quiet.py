"""Importing NNabla without its INFO log line."""

import contextlib
import logging


@contextlib.contextmanager
def nnabla_import_quiet():
    """Holds NNabla's logger at WARNING while NNabla is imported inside the block.

    NNabla logs "[nnabla][INFO]: Initializing CPU extension..." when imported;
    a library (and the command line, whose output may be parsed) should not
    print it. A level the user gave the ``nnabla`` logger is left alone, and
    the logger is as it was after the block.
    """
    logger = logging.getLogger("nnabla")
    if logger.level != logging.NOTSET:
        yield
        return
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(logging.NOTSET)
