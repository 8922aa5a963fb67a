"""Atomic writing: a file is replaced whole or not at all (docs/checkpoints.md).

Every file the library writes (parameter files, ``.nnp`` exports, converted
checkpoints) goes through :func:`write_atomically`.
"""

import contextlib
import errno
import os
import secrets
import stat


def write_atomically(path, write):
    """Writes the file ``path`` through a temporary file and an atomic rename.

    ``write(temporary_path)`` writes the whole file to a new, empty temporary
    file in the target's folder; then it is synced and renamed over ``path``
    (``os.replace``), and the folder is synced. If anything fails (an exception
    of any kind, a full disk, a killed process) the previous file is intact;
    only a killed process leaves its temporary (``.<name>.<random>.tmp``).

    * A symbolic link is written through: its target is replaced, the link stays.
    * A write-protected file is refused as ``open(path, "w")`` refuses it
      (``PermissionError``), even though the folder would allow the rename.
    * The temporary is created with the final file's permissions, never wider:
      an existing file's mode is kept, a new file gets the umask's.
    * Errors name ``path``, never the temporary.

    Args:
        path (str or os.PathLike): The file to write.
        write (callable): ``write(temporary_path)``; whatever it returns is ignored.
    """
    path = os.fspath(path)
    target = os.path.realpath(path)
    mode = _existing_mode(path, target)
    folder, base = os.path.split(target)
    temporary = _temporary_name(folder, base)
    try:
        _create_temporary(temporary, mode)
        write(temporary)
        _fsync(temporary)
        if mode is not None:
            os.chmod(temporary, mode)  # exactly the old file's mode, whatever the umask
        os.replace(temporary, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _naming_path(error, temporary, path) from error
        raise
    _fsync_directory(folder)  # makes the rename itself durable


def _existing_mode(path, target):
    """The mode bits of the file being replaced (None: a new one); refuses what open() refuses."""
    try:
        status = os.stat(target)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
    if not os.access(target, os.W_OK):
        raise PermissionError(
            errno.EACCES, "Permission denied: the file is write-protected (change its mode "
            "to replace it, or write elsewhere)", path
        )
    return stat.S_IMODE(status.st_mode)


def _naming_path(error, temporary, path):
    """``error`` about the temporary, told about ``path`` (the file the user named)."""
    if temporary not in str(error):
        return error
    message = (error.strerror or str(error)).replace(temporary, path)
    return type(error)(error.errno, message, path) if error.errno else OSError(message)


def _temporary_name(folder, base):
    """A short name beside the target: a legal target name gives a legal temporary name."""
    return os.path.join(folder, f".{base[:32]}.{secrets.token_hex(4)}.tmp")


def _create_temporary(temporary, mode):
    """Creates the empty temporary, with no wider permissions than the final file."""
    # A new file gets what a plain open() gives (0o666 less the umask); replacing a
    # file, the owner must write it and nobody else may read more than before.
    create_mode = 0o666 if mode is None else (mode & 0o077) | 0o600
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, create_mode))


def _fsync(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(folder):
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open a folder
        return
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
