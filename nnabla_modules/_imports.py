"""The failed imports NNabla repeats on each call, answered at once (docs/nnabla_process.md).

NNabla's compiled modules (``nnabla.function``, ``nnabla._variable``, ...) were
built with Python 2 import semantics: an ``import nnabla`` inside a function
first tries the module of that name in their own package, ``nnabla.nnabla``,
which does not exist, then the absolute ``nnabla``. Python keeps a successful
import in ``sys.modules`` but never a failed one, so each try walks the import
machinery again: a lock, every finder, a look at NNabla's folder on the disk.
Every function call makes two such tries (``nnabla.nnabla``), each parameter
created, saved or loaded more (``nnabla.nnabla_ext``): most of the time of a
small function's graph construction.

A name whose value in ``sys.modules`` is ``None`` is Python's documented mark
of a missing module: importing it raises ``ModuleNotFoundError`` at once, with
the same ``name``, and NNabla then takes the absolute import as before. Only
names that do not exist are marked, checked here with
``importlib.util.find_spec`` (which imports nothing): an import that succeeded
before succeeds still. ``NNABLA_MODULES_KEEP_IMPORTS=1`` in the environment
leaves ``sys.modules`` alone.
"""

import importlib.util
import os
import sys

OPT_OUT = "NNABLA_MODULES_KEEP_IMPORTS"

#: Every ``nnabla.<name>`` NNabla's compiled modules try and miss while they build,
#: run, differentiate and update a graph, save and load parameters and solver
#: states: the modules they import, tried first in NNabla's own package.
RELATIVE_TRIES = tuple(f"nnabla.{name}" for name in (
    "nnabla", "nnabla_ext", "h5py", "os", "warnings",
))


def mark_missing(names=RELATIVE_TRIES):
    """Sets ``sys.modules[name] = None`` for each of ``names`` no finder can find.

    Returns the names marked: none when ``NNABLA_MODULES_KEEP_IMPORTS`` is set
    (to anything but ``0`` or nothing), and none already in ``sys.modules``
    (imported, or marked by whoever came first).
    """
    if os.environ.get(OPT_OUT, "0") not in ("", "0"):
        return ()
    marked = []
    for name in names:
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = None
            marked.append(name)
    return tuple(marked)


class FailedImports:
    """Counts the imports no finder found, by name, while it is entered.

    A finder last on ``sys.meta_path`` is asked only about names every other
    finder missed; it finds nothing either. A name marked missing in
    ``sys.modules`` never reaches it.
    """

    def __init__(self):
        self.names = {}

    def find_spec(self, name, path=None, target=None):
        self.names[name] = self.names.get(name, 0) + 1
        return None

    def __enter__(self):
        sys.meta_path.append(self)
        return self

    def __exit__(self, *exc_info):
        sys.meta_path.remove(self)
