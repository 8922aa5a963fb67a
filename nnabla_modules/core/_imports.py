"""The failed imports NNabla repeats on each call, answered at once (docs/nnabla_process.md).

NNabla's compiled modules (``nnabla.function``, ``nnabla._variable``, ...) were
built with Python 2 import semantics: an ``import nnabla`` or ``from
nnabla.variable import Variable`` inside a function first tries the module of
that name in their own package (``nnabla.nnabla``, ``nnabla.nnabla.variable``),
which does not exist, then the absolute one. Python keeps a successful import
in ``sys.modules`` but never a failed one, so each try walks the import
machinery again: a lock, every finder, a look at NNabla's folder on the disk.
Every function call makes two such tries, each parameter created, saved or
loaded more (``nnabla.nnabla_ext``): most of the time of a small function's
graph construction.

A name whose value in ``sys.modules`` is ``None`` is Python's mark of a
missing module: importing it raises ``ModuleNotFoundError`` at once, with the
same ``name``, and NNabla then takes the absolute import as before. Only names
that do not exist are marked: a name in NNabla's package if
``importlib.util.find_spec`` (which imports nothing) finds no module of that
name, a name inside another only if that one is marked. An import that
succeeded before succeeds still. ``NNABLA_MODULES_KEEP_IMPORTS=1`` in the
environment leaves ``sys.modules`` alone.

Python still takes the import system's lock of a marked name at each try, and
makes that lock anew each time (two thread locks and a weak reference, a fifth
of a small function call's instructions) unless someone holds it: this module
holds the lock of each name it marks.
"""

import importlib._bootstrap
import importlib.util
import os
import sys

OPT_OUT = "NNABLA_MODULES_KEEP_IMPORTS"
#: The import system's locks of the names marked here, held so that they are not remade.
_LOCKS: list = []

#: Every module NNabla's compiled modules import inside a function, as they try it
#: first: in NNabla's own package (``import os`` in ``nnabla.solver`` tries
#: ``nnabla.os``). A module of NNabla imported that way (``nnabla.variable``) is
#: tried as ``nnabla.nnabla.variable``. Parents before their children.
RELATIVE_TRIES = (
    "nnabla.nnabla",
    *(f"nnabla.nnabla.{name}" for name in (
        "variable", "function", "functions", "parametric_functions", "initializer", "solvers",
        "ext_utils", "communicators", "experimental", "lms", "utils",
    )),
    "nnabla.nnabla_ext", "nnabla.nnabla_ext.cpu", "nnabla.nnabla_ext.cuda",
    *(f"nnabla.{name}" for name in (
        "numpy", "h5py", "os", "sys", "warnings", "gc", "platform", "ctypes", "torch",
    )),
)


def _missing(name):
    parent = name.rpartition(".")[0]
    if parent != "nnabla":
        return parent in sys.modules and sys.modules[parent] is None
    return importlib.util.find_spec(name) is None


def mark_missing(names=RELATIVE_TRIES):
    """Sets ``sys.modules[name] = None`` for each of ``names`` that does not exist.

    Returns the names marked: none when ``NNABLA_MODULES_KEEP_IMPORTS`` is set
    (to anything but ``0`` or nothing), and none already in ``sys.modules``
    (imported, or marked by whoever came first).
    """
    if os.environ.get(OPT_OUT, "0") not in ("", "0"):
        return ()
    marked = []
    for name in names:
        if name not in sys.modules and _missing(name):
            sys.modules[name] = None
            marked.append(name)
    get_module_lock = getattr(importlib._bootstrap, "_get_module_lock", None)
    if get_module_lock is not None:  # CPython's; a lock is made on demand, by name
        _LOCKS.extend(get_module_lock(name) for name in marked)
    return tuple(marked)


class FailedImports:
    """Counts the imports that fail, by name, while it is entered.

    ``names``: each import Python's import machinery was asked to load and
    could not; ``searched``: those of them that went to the finders (the
    rest were marked missing in ``sys.modules``).
    """

    def __init__(self):
        self.names, self.searched = {}, {}
        self._find_and_load = None

    def _traced(self, name, import_):
        searched = sys.modules.get(name, 0) is not None and sys.modules.get(
            name.rpartition(".")[0], 0) is not None
        try:
            return self._find_and_load(name, import_)
        except ImportError:
            for counts, counted in ((self.names, True), (self.searched, searched)):
                if counted:
                    counts[name] = counts.get(name, 0) + 1
            raise

    def __enter__(self):
        self._find_and_load = importlib._bootstrap._find_and_load
        importlib._bootstrap._find_and_load = self._traced
        return self

    def __exit__(self, *exc_info):
        importlib._bootstrap._find_and_load = self._find_and_load
