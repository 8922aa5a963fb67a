"""The crash probe: a child process reads an ``.h5`` file's structure first.

Where the Python check (``_h5_check.py``) cannot vouch for a file, HDF5 reads it
in a fresh interpreter, bounded in time and memory, before the loading process
does (see docs/checkpoints.md). The child runs ``_h5.py`` alone
(:func:`~nnabla_modules.files._h5.probe_main`), without importing NNabla.
"""

import contextlib
import os
import signal
import subprocess
import sys

from . import _h5
from ._h5 import ParameterFileError

#: The child's time: this many seconds, plus one per ``PROBE_BYTES_PER_SECOND`` of file.
PROBE_SECONDS = 10.0
PROBE_BYTES_PER_SECOND = 64 << 20
#: The address space the child may take beyond what its interpreter and imports hold.
PROBE_MEMORY = 512 << 20


def probe(stream, label):
    """Reads the file in ``stream`` in a fresh interpreter first: its structure, and the
    values of its chunked datasets (their chunk index and filters).

    HDF5 trusts a file's metadata: some damage to an unchecksummed file crashes
    the C library, loops forever or allocates without end, and no ``except``
    catches that. A child process meets it instead, bounded: it has
    :data:`PROBE_SECONDS` (more for a larger file), :data:`PROBE_MEMORY` of
    address space (``RLIMIT_AS``), its own process group, and dies with the
    process that started it (``PR_SET_PDEATHSIG`` on Linux). On a timeout or
    any exception here, Ctrl-C included, its group is killed and it is
    reaped. It reports by printing ``ok`` or ``error`` and the message, so the
    verdict never depends on exit statuses (which a process ignoring
    ``SIGCHLD`` cannot see), and a file it finds unreadable is never opened
    here. A file on disk is handed over as the open file itself (Linux), other
    streams as bytes on the child's standard input.

    Raises:
        ParameterFileError: The file is unreadable, or reading it crashed the
            child, ran out of time or of memory.
        OSError: No child can be started.
    """
    held = _held_file(stream)
    data = b"" if held else _all_bytes(stream)
    timeout = PROBE_SECONDS + (len(data) or os.path.getsize(held)) / PROBE_BYTES_PER_SECOND
    # -I: neither the working folder nor the environment can put modules in its way
    command = [sys.executable, "-I", "-c", _PROBE, _h5.__file__, os.pathsep.join(sys.path), held,
               label, str(os.getpid()), str(PROBE_MEMORY)]  # fmt: skip
    child = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        pass_fds=(stream.fileno(),) if held else (),
        start_new_session=True,  # its own process group, killed whole below
    )
    try:
        verdict, _ = child.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        verdict = None
    finally:  # also on Ctrl-C: never leave a child running, nor a zombie
        if child.returncode is None:  # not reaped yet: its process group is still its own
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    if verdict == b"ok":
        return
    if verdict and verdict.startswith(b"error\n"):
        raise ParameterFileError(verdict[6:].decode("utf-8", "replace"))
    cause = (
        f"reading it took a child process more than {timeout:.0f} s (its metadata loops?)"
        if verdict is None
        else "reading it crashed the HDF5 library in a child process, or exhausted its memory"
    )
    raise ParameterFileError(
        f"{label} is not a readable NNabla .h5 parameter file: its structure is corrupted ({cause})"
    )


def _held_file(stream):
    """``/proc/self/fd/N`` of a file on disk (the child opens the very file), else ``""``."""
    try:
        path = f"/proc/self/fd/{stream.fileno()}"
    except (AttributeError, OSError, ValueError):  # BytesIO and other streams
        return ""
    return path if os.path.isfile(path) else ""


def _all_bytes(stream):
    position = stream.tell()
    try:
        stream.seek(0)
        return stream.read()
    finally:
        stream.seek(position)


# Dies with its parent, and does nothing if the parent died before that was set.
_PROBE = """
import ctypes, os, signal, sys
if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[5]):
    sys.exit(1)
import importlib.util
sys.path[:0] = [p for p in sys.argv[2].split(os.pathsep) if p]
spec = importlib.util.spec_from_file_location("_h5_child", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.probe_main(sys.argv[3], sys.argv[4], int(sys.argv[6]))
"""
