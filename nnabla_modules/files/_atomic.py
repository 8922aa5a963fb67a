"""Atomic writing: a file is replaced whole or not at all (docs/checkpoints.md).

Every file the library writes (parameter files, ``.nnp`` exports, converted
checkpoints) goes through :func:`write_atomically`.
"""

import contextlib
import errno
import os
import secrets
import stat

from ._signals import deliver_pending, interrupts_held_back

try:
    import grp
except ImportError:  # Windows
    grp = None


def write_atomically(path, write):
    """Writes the file ``path`` through a temporary file and an atomic rename.

    ``write(temporary_path)`` writes the whole file to a new, empty temporary
    file in the target's folder; then it is synced and renamed over ``path``
    (``os.replace``), and the folder is synced. If anything fails (an exception
    of any kind, a full disk, a killed process) the previous file is intact;
    only a killed process leaves its temporary (``.<name>.<random>.tmp``).

    * A symbolic link is written through: its target is replaced, the link stays;
      but not one another user left in a sticky, world-writable folder (as
      ``open()`` refuses it under the kernel's ``protected_symlinks``).
    * A write-protected file is refused as ``open(path, "w")`` refuses it
      (``PermissionError``), even though the folder would allow the rename; on
      a read-only file system the error says so (``EROFS``).
    * A file being replaced keeps its mode and its access control list (Linux's
      POSIX ACLs), and its owner and group where the user may set them (root:
      always; others: a group they belong to). A group that cannot be kept is
      refused when the mode lets the group read.
      The temporary is private to its owner until then; a new file gets what
      ``open()`` gives (the umask's mode, the folder's group).
    * A named pipe, a device or a socket is refused, not replaced by a file, even
      one put in its place after it was looked at (its opening never waits).
    * The temporary is synced and given its owner and mode through its descriptor:
      one replaced while it was written (a link, in a folder another user can
      write) is refused, its owner and mode never given to the file linked to.
    * A folder the user cannot write, and a file that is a mount point (a
      single-file bind mount), are errors that say so: the rename needs both.
    * Errors name ``path``, never the temporary.
    * A signal whose Python handler raises (Ctrl-C) is held back while the file
      is written (raised inside h5py's cleanup code, it would be lost), and its
      handler run before the rename, undoing the save, or at a
      :func:`~nnabla_modules.files._signals.deliver_pending` inside ``write``; one
      arriving during the rename runs after it, the save complete.

    Args:
        path (str or os.PathLike): The file to write.
        write (callable): ``write(temporary_path)``; whatever it returns is ignored.
    """
    path = os.fspath(path)
    with interrupts_held_back():  # from the first descriptor opened (_existing) to the last
        _refuse_planted_link(path)
        target = os.path.realpath(path)
        existing = _existing(path, target)
        folder, base = os.path.split(target)
        temporary = _temporary_name(folder, base)
        try:
            created = _create_temporary(temporary, existing, folder, path)
            write(temporary)
            _finish_temporary(temporary, created, existing, path)
            deliver_pending()  # the last point where a Ctrl-C undoes the save
            _replace(temporary, target, path)
        except BaseException as error:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            if isinstance(error, OSError):
                raise _naming_path(error, temporary, path) from error
            raise
        _fsync_directory(folder)  # makes the rename itself durable


_SPECIAL_FILES = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class NotRegularFile(OSError):
    """A path that turned out, once opened, to be no regular file; ``kind`` says what."""

    def __init__(self, kind, path):
        super().__init__(errno.EINVAL, f"Not a regular file but {kind}", path)
        self.kind = kind


def open_regular(path, flags):
    """``os.open(path, flags)`` of a regular file; :class:`NotRegularFile` otherwise.

    Opened without blocking, then checked by its descriptor: a path checked before
    (:func:`special_file`) can be replaced by a named pipe meanwhile, in a folder another
    user can write, and ``open()`` would wait for good for the pipe's other end.
    """
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, flags | nonblocking | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        if error.errno == errno.ENXIO:  # a named pipe opened for writing, nobody reading
            raise NotRegularFile(special_file(path) or "a named pipe", path) from None
        raise
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else _SPECIAL_FILES.get(
                stat.S_IFMT(mode), "a special file")
            raise NotRegularFile(kind, path)
        if nonblocking:
            os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def special_file(path):
    """What ``path`` is when it is neither a regular file nor a folder ("a named pipe"),
    following links; None otherwise, or when it does not exist."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return _SPECIAL_FILES.get(stat.S_IFMT(mode), "a special file")


def unbounded_stream(stream):
    """What a file object is when reading it could go on without end: a named pipe, a
    device or a socket behind its descriptor, or "a stream that cannot seek" (its size
    is unknown); None for a regular file or a seekable stream (bytes in memory)."""
    if getattr(stream, "closed", False):
        return None  # reading it says so
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (AttributeError, OSError, ValueError):  # no descriptor (io.BytesIO)
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        if stat.S_ISFIFO(mode):
            return "a pipe"  # named or not
        return _SPECIAL_FILES.get(stat.S_IFMT(mode), "a special file")
    seekable = getattr(stream, "seekable", None)
    try:
        if seekable is not None and seekable():
            return None
    except (OSError, ValueError):
        pass
    return "a stream that cannot seek"


def _refuse_planted_link(path):
    """Refuses a symbolic link that another user left in a sticky, world-writable folder
    (as /tmp is): the kernel's ``protected_symlinks`` makes ``open()`` refuse to follow
    it, but a rename over its target would not ask. The same rule as the kernel's."""
    try:
        link = os.lstat(path)
        folder = os.stat(os.path.dirname(os.path.abspath(path)))
        user = os.geteuid()
    except (AttributeError, OSError):  # nothing there yet; no user IDs (Windows)
        return
    if (
        not stat.S_ISLNK(link.st_mode)
        or not folder.st_mode & stat.S_ISVTX
        or not folder.st_mode & stat.S_IWOTH
        or link.st_uid in (user, folder.st_uid)
    ):
        return
    raise PermissionError(
        errno.EACCES, "Permission denied: the file is a symbolic link that another user left in "
        "a shared folder (sticky and writable by all, as /tmp is), which open() does not "
        "follow either; save to the file it points to, or elsewhere", path,
    )


def _existing(path, target):
    """The status of the file being replaced (None: a new one); refuses what it must not replace."""
    try:
        status = os.stat(path)  # also through /proc/self/fd/N, whose realpath names nothing
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
    if not stat.S_ISREG(status.st_mode):
        raise _not_regular(_SPECIAL_FILES.get(stat.S_IFMT(status.st_mode), "a special file"), path)
    _refuse_unwritable(target, path)
    return status


def _not_regular(kind, path):
    return OSError(
        errno.EINVAL, f"Not a regular file but {kind}: a save would replace it with a "
        "regular file (write to a file path instead)", path
    )


def _refuse_unwritable(target, path):
    """Refuses a file that ``open(path, "w")`` would refuse, in the OS's words.

    Opened for writing, neither created nor truncated: nothing changes.
    """
    try:
        os.close(open_regular(target, os.O_WRONLY))
    except NotRegularFile as error:  # replaced since _existing looked at it
        raise _not_regular(error.kind, path) from None
    except OSError as error:
        if error.errno == errno.EROFS or _read_only_file_system(target):
            raise OSError(errno.EROFS, "Read-only file system", path) from None
        if error.errno == errno.EACCES:
            raise PermissionError(
                errno.EACCES, "Permission denied: the file is write-protected (change its "
                "mode to replace it, or write elsewhere)", path
            ) from None
        if error.errno == errno.EPERM:  # Linux: an immutable or append-only file
            raise PermissionError(
                errno.EPERM, "Operation not permitted: the file may not be written, as "
                "open() says (an immutable or append-only file refuses it: lsattr shows "
                "its attributes, chattr changes them); write elsewhere", path
            ) from None
        raise type(error)(error.errno, error.strerror, path) from None


def _read_only_file_system(path):
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # no statvfs (Windows)
        return False


def _keep_owner_and_mode(temporary, old, path):
    """Gives the temporary (its descriptor, where the OS takes one) the replaced file's
    owner, group and mode, or refuses.

    The mode is set last: changing the owner clears the set-user-ID and set-group-ID bits.
    """
    new = os.stat(temporary)
    if (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid):
        # Root may; the owner may give it a group it is in. EINVAL: an ID this
        # user namespace cannot map (a container's files owned from outside).
        try:
            os.chown(temporary, old.st_uid, old.st_gid)
        except OSError:
            with contextlib.suppress(OSError):
                os.chown(temporary, -1, old.st_gid)
        new = os.stat(temporary)
    if new.st_gid != old.st_gid and stat.S_IMODE(old.st_mode) & 0o070:
        raise PermissionError(
            errno.EPERM, f"Operation not permitted: the file's group ({_group(old.st_gid)}) "
            f"cannot be kept, and the new file's group ({_group(new.st_gid)}) could read it "
            "(save it as a member of its group, or change its group or mode first)", path
        )
    _keep_access_list(temporary, path)
    os.chmod(temporary, stat.S_IMODE(old.st_mode))


_ACCESS_LIST = "system.posix_acl_access"  # Linux's POSIX ACLs (setfacl)


def _keep_access_list(temporary, path):
    """Gives the temporary the replaced file's access control list, or refuses.

    With a list, the mode's group bits are its mask: the mode alone would let the
    file's group read what the list forbids it (``setfacl -m g::-``). Without
    one, the temporary loses the list its folder's default gave it (``setfacl
    -d``): that would grant users the replaced file did not.
    """
    if not hasattr(os, "getxattr"):  # not Linux
        return
    try:
        access_list = os.getxattr(path, _ACCESS_LIST)
    except OSError:  # none (ENODATA), or a file system without them
        with contextlib.suppress(OSError):
            os.removexattr(temporary, _ACCESS_LIST)
        return
    try:
        os.setxattr(temporary, _ACCESS_LIST, access_list)
    except OSError as error:
        raise PermissionError(
            errno.EPERM, f"Operation not permitted: the file's access control list cannot be "
            f"kept ({error.strerror}), and the new file would grant what it denies (save it "
            "as its owner, or remove the list first: setfacl -b)", path,
        ) from None


def _group(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except (AttributeError, KeyError):  # no grp module (Windows); a group without a name
        return str(gid)


def _replace(temporary, target, path):
    try:
        os.replace(temporary, target)
    except OSError as error:
        if error.errno == errno.EBUSY:
            raise OSError(
                errno.EBUSY, "Device or resource busy: the file is a mount point (a "
                "single-file bind mount, as Docker's -v file or Kubernetes' subPath make), "
                "which a rename cannot replace; mount its folder instead, or save elsewhere "
                "and copy the file", path,
            ) from None
        if error.errno in (errno.EPERM, errno.EACCES):
            folder = os.path.dirname(target)
            why = " (a sticky folder, as /tmp is: only its owner may)"
            if not os.stat(folder).st_mode & stat.S_ISVTX:
                why = ""
            raise type(error)(
                error.errno, f"{error.strerror}: the folder {folder!r} does not let you replace "
                f"the file by a rename{why}, which a save needs so that a failure never leaves "
                "half a file; save as the file's owner, or elsewhere", path,
            ) from None
        raise


def _naming_path(error, temporary, path):
    """``error`` about the temporary, told about ``path`` (the file the user named)."""
    if temporary not in str(error):
        if error.errno and not error.filename:  # a write that names no file (a full disk)
            return type(error)(error.errno, error.strerror or str(error), path)
        return error
    message = (error.strerror or str(error)).replace(temporary, path)
    return type(error)(error.errno, message, path) if error.errno else OSError(message)


def _temporary_name(folder, base):
    """A short name beside the target: a legal target name gives a legal temporary name."""
    return os.path.join(folder, f".{base[:32]}.{secrets.token_hex(4)}.tmp")


def _create_temporary(temporary, existing, folder, path):
    """Creates the empty temporary: private while it replaces a file, else as open() would."""
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                             _creation_mode(existing))
    except PermissionError as error:  # EACCES; EPERM: an immutable folder (chattr +i)
        raise PermissionError(
            error.errno, f"{error.strerror}: cannot create a file in the folder {folder!r}. "
            "A save writes a temporary file beside the checkpoint and renames it over it, "
            "so that a failure never leaves half a file: make the folder writable, or save "
            "elsewhere", path,
        ) from None
    try:
        return os.fstat(descriptor)  # the file a link put in its place would not be
    finally:
        os.close(descriptor)


def _creation_mode(existing):
    # A new file gets what a plain open() gives (0o666 less the umask); a file being
    # replaced, only its owner until its group and mode are set (a setgid folder's
    # group may differ from the file's).
    return 0o666 if existing is None else 0o600


def _finish_temporary(temporary, created, existing, path):
    """Syncs the written temporary and gives it the replaced file's owner and mode, through
    a descriptor of the very file created: in a folder another user can write, the
    temporary's name could be made a link meanwhile, and a change by name would give
    them the file it points to (root's save: any file of the system)."""
    try:
        descriptor = open_regular(temporary, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        status = os.fstat(descriptor)
    except OSError:
        status = descriptor = None
    if status is None or (status.st_dev, status.st_ino) != (created.st_dev, created.st_ino):
        if descriptor is not None:
            os.close(descriptor)
        raise OSError(
            errno.EINVAL, "Invalid argument: the temporary file was replaced while it was "
            "written (someone else can write the folder); nothing was saved: save to a "
            "folder only you can write", path,
        )
    try:
        os.fsync(descriptor)
        if existing is not None:
            _keep_owner_and_mode(descriptor if os.chmod in os.supports_fd else temporary,
                                 existing, path)
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
