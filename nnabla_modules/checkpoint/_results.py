"""What a load returns and raises: :class:`LoadResult` and :class:`CheckpointError`.

Kept apart so that the files of a load (``checkpoint.py``, ``_load_plan.py``,
``_load_check.py``) share them without importing each other in a circle.
"""

from collections import namedtuple


class LoadResult(namedtuple("LoadResult", "missing_keys unexpected_keys mismatched_keys")):
    """What a load did not take, like PyTorch's ``_IncompatibleKeys``.

    Attributes:
        missing_keys (list of str): The module's parameters the file lacks,
            keys relative to the module.
        unexpected_keys (list of str): The file's keys that fit no parameter, as
            written in the file.
        mismatched_keys (list of str): The module's parameters whose shape or
            dtype the file's values do not fit, keys relative to the module.
    """

    __slots__ = ()

    def __repr__(self):
        if not any(self):
            return "<LoadResult: all keys matched>"
        return super().__repr__()


class CheckpointError(ValueError):
    """A checkpoint that does not fit the module; nothing was loaded.

    Args:
        message (str): The report: every key that did not fit, by name.
        result (LoadResult): Everything that did not fit.

    Attributes:
        result (LoadResult): Everything that did not fit.
    """

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result
