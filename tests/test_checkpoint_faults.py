"""Saves and loads under faults: full disks, signals, permissions, links, other users, races.

See docs/checkpoints.md, "Guarantees and limits". Tests that need root (a
tmpfs mount, another user) run when the suite runs as root and skip otherwise.
"""

import contextlib
import errno
import io as stdio
import os
import pwd
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zipfile

import h5py
import nnabla as nn
import numpy as np
import pytest

import nnabla_modules as nm
from nnabla_modules import _h5, checkpoint, files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


class Net(nm.Module):
    """32 parameter arrays."""

    def __init__(self):
        self.layers = [nm.Affine(8, 8) for _ in range(16)]


def values_of(model):
    return {k: v.d.copy() for k, v in model.get_parameters(grad_only=False).items()}


def randomize(model, seed):
    rng = np.random.RandomState(seed)
    for param in model.get_parameters(grad_only=False).values():
        param.d = rng.randn(*param.shape).astype(np.float32)
    return values_of(model)


def assert_values(model, expected):
    got = values_of(model)
    assert list(got) == list(expected)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def temporaries(folder):
    return [name for name in os.listdir(folder) if name.endswith(".tmp")]


def run_child(code, *args, timeout=120):
    """Runs ``code`` in a fresh interpreter with this checkout importable."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def as_nobody(function):
    """Runs ``function()`` in a forked child that dropped to the user ``nobody``; its result."""
    nobody = pwd.getpwnam("nobody")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 1
        try:
            os.close(read)
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            os.write(write, repr(function()).encode())
            code = 0
        except BaseException as error:  # noqa: B036
            os.write(write, f"error {error!r}".encode())
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        result = pipe.read()
    os.waitpid(pid, 0)
    return result


needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (a mount, another user)")


# --- full disks -----------------------------------------------------------------------------

FULL_DISK_CHILD = """
import os, sys
import numpy as np
from nnabla_modules import files

folder, pad = sys.argv[1], int(sys.argv[2])
path = os.path.join(folder, "model.h5")
files.write_parameters(path, {"good": np.ones(10, np.float32)})
with open(os.path.join(folder, "pad"), "wb") as handle:
    handle.write(b"x" * pad)  # the disk fills somewhere in the save below
new = {f"p{i}": np.full(10000, i + 1, np.float32) for i in range(8)}
try:
    files.write_parameters(path, new)
    outcome = "saved"
except OSError as error:
    outcome = "refused"
    assert "model.h5" in str(error) and ".tmp" not in str(error), error
loaded = files.read_parameters(path)
if outcome == "saved":
    assert list(loaded) == list(new) and all((loaded[k][0] == v).all() for k, v in new.items())
else:
    assert list(loaded) == ["good"], list(loaded)
assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]
print(outcome)
"""


@needs_root
@pytest.mark.slow
def test_a_full_tmpfs_never_installs_a_damaged_file(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    outcomes = []
    try:
        # The file is 324 KiB: pads around 80 KiB fill the disk in the final flush.
        for pad in range(40_000, 100_001, 5_000):
            for name in os.listdir(mount):
                os.unlink(mount / name)
            done = run_child(FULL_DISK_CHILD, mount, pad)
            assert done.returncode == 0, (pad, done.returncode, done.stderr[-2000:])
            outcomes.append(done.stdout.strip())
    finally:
        subprocess.run(["umount", str(mount)], check=False)
    assert "saved" in outcomes and "refused" in outcomes, outcomes


def test_a_final_flush_lost_silently_is_caught_before_the_rename(tmp_path, monkeypatch):
    """Fault injection: HDF5's close drops its last writes and reports nothing (a full disk)."""
    path = tmp_path / "model.h5"
    files.write_parameters(path, {"good": np.ones(3, np.float32)})
    previous = path.read_bytes()
    close = h5py.File.close

    def close_losing_the_end(self):
        name = self.filename if self.mode == "r+" else None
        close(self)
        if name:
            with open(name, "r+b") as handle:
                handle.truncate(os.path.getsize(name) - 2048)

    monkeypatch.setattr(h5py.File, "close", close_losing_the_end)
    with pytest.raises(OSError, match=r"model\.h5.*incomplete") as caught:
        files.write_parameters(path, {f"p{i}": np.full(4096, i, np.float32) for i in range(4)})
    assert ".tmp" not in str(caught.value)
    assert path.read_bytes() == previous
    assert temporaries(tmp_path) == []


def test_a_failing_fsync_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.protobuf"
    files.write_parameters(path, {"good": np.ones(3, np.float32)})
    previous = path.read_bytes()

    def full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        files.write_parameters(path, {"p": np.zeros(100, np.float32)})
    assert path.read_bytes() == previous
    assert temporaries(tmp_path) == []


# --- signals during a load --------------------------------------------------------------------


def _interrupting(stored, after, action):
    """Makes reading the ``after``-th parameter of ``stored`` run ``action`` first."""
    param = list(stored.values())[after]
    read = param._read_into

    def interrupted(out):
        action()
        read(out)

    param._read_into = interrupted


def test_a_sigterm_handler_raising_systemexit_mid_load_waits_for_the_whole_load(tmp_path):
    model = Net()
    saved = randomize(model, 1)
    model.save_parameters(tmp_path / "net.h5")
    randomize(model, 2)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(3))
    try:
        with files.open_parameters(tmp_path / "net.h5") as stored:
            _interrupting(stored, 5, lambda: os.kill(os.getpid(), signal.SIGTERM))
            with pytest.raises(SystemExit) as caught:
                checkpoint._load(model, stored, "net.h5", strict=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert caught.value.code == 3
    assert_values(model, saved)  # all 32 arrays, then the exit


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit, OSError, MemoryError])
def test_any_exception_mid_write_puts_every_old_value_back(tmp_path, error):
    model = Net()
    randomize(model, 1)
    model.save_parameters(tmp_path / "net.h5")
    before = randomize(model, 2)

    def fail():
        raise error("injected")

    with files.open_parameters(tmp_path / "net.h5") as stored:
        _interrupting(stored, 27, fail)
        with pytest.raises(error, match="injected") as caught:
            checkpoint._load(model, stored, "net.h5", strict=True)
    assert_values(model, before)
    assert any("nothing was changed" in note for note in caught.value.__notes__)


# --- permissions, links, other users ------------------------------------------------------------


def _save_over_write_protected(folder):
    path = os.path.join(folder, "model.h5")
    try:
        files.write_parameters(path, {"new": np.zeros(2, np.float32)})
    except PermissionError as error:
        assert error.filename == path, error
        return "refused"
    return "replaced"


def test_a_write_protected_checkpoint_is_refused_like_open_refuses_it(tmp_path):
    path = tmp_path / "model.h5"
    files.write_parameters(path, {"old": np.ones(2, np.float32)})
    os.chmod(path, 0o444)
    previous = path.read_bytes()
    if IS_ROOT:  # root may write anything: the refusal is checked as another user
        os.chmod(tmp_path, 0o777)
        assert as_nobody(lambda: _save_over_write_protected(str(tmp_path))) == "'refused'"
    else:
        assert _save_over_write_protected(str(tmp_path)) == "refused"
    assert path.read_bytes() == previous


def test_a_symlinked_checkpoint_is_written_through(tmp_path):
    (tmp_path / "big").mkdir()
    (tmp_path / "run").mkdir()
    real = tmp_path / "big" / "model.h5"
    link = tmp_path / "run" / "model.h5"
    model = Net()
    model.save_parameters(real)
    os.symlink(real, link)
    saved = randomize(model, 5)
    model.save_parameters(link)
    assert os.path.islink(link) and os.readlink(link) == str(real)
    assert temporaries(tmp_path / "run") == [] and temporaries(tmp_path / "big") == []
    randomize(model, 6)
    model.load_parameters(real)
    assert_values(model, saved)


def test_saving_over_a_private_checkpoint_never_exposes_the_new_weights(tmp_path, monkeypatch):
    path = tmp_path / "model.h5"
    files.write_parameters(path, {"w": np.ones(2, np.float32)})
    os.chmod(path, 0o600)
    seen = []
    values = files._values

    def look(value):  # mid-save: what does the temporary allow?
        for name in temporaries(tmp_path):
            temporary = str(tmp_path / name)
            seen.append(os.stat(temporary).st_mode & 0o777)
            if IS_ROOT:
                os.chmod(tmp_path, 0o755)
                seen.append(as_nobody(lambda t=temporary: open(t, "rb").read(1)))
        return values(value)

    monkeypatch.setattr(files, "_values", look)
    files.write_parameters(path, {"w": np.zeros(2, np.float32), "v": np.zeros(3, np.float32)})
    assert seen and all(mode & 0o077 == 0 for mode in seen if isinstance(mode, int)), seen
    assert all("PermissionError" in text for text in seen if isinstance(text, str)), seen
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_a_new_file_gets_the_umask_and_an_old_one_keeps_its_mode(tmp_path):
    old_umask = os.umask(0o027)
    try:
        files.write_parameters(tmp_path / "new.h5", {"w": np.ones(2, np.float32)})
    finally:
        os.umask(old_umask)
    assert os.stat(tmp_path / "new.h5").st_mode & 0o777 == 0o640
    os.chmod(tmp_path / "new.h5", 0o604)
    files.write_parameters(tmp_path / "new.h5", {"w": np.zeros(2, np.float32)})
    assert os.stat(tmp_path / "new.h5").st_mode & 0o777 == 0o604


def test_the_longest_legal_file_name_can_be_saved(tmp_path):
    name = "m" * (255 - len(".h5")) + ".h5"
    files.write_parameters(tmp_path / name, {"w": np.ones(2, np.float32)})
    assert list(files.read_parameters(tmp_path / name)) == ["w"]
    assert os.listdir(tmp_path) == [name]


def test_errors_name_the_users_path_never_a_temporary(tmp_path):
    missing = tmp_path / "no such folder" / "model.h5"
    with pytest.raises(FileNotFoundError) as caught:
        files.write_parameters(missing, {"w": np.ones(2, np.float32)})
    assert caught.value.filename == str(missing) and ".tmp" not in str(caught.value)
    with pytest.raises(IsADirectoryError):
        files.write_parameters(tmp_path, {"w": np.ones(2, np.float32)}, extension=".h5")


# --- concurrent writers -----------------------------------------------------------------------


def test_a_file_replaced_while_it_is_opened_is_read_whole(tmp_path, monkeypatch):
    """A save by another process (an atomic rename) between our open and HDF5's."""
    path = tmp_path / "model.h5"
    model = Net()
    old = randomize(model, 1)
    model.save_parameters(path)
    new_model = Net()
    randomize(new_model, 2)
    new_model.layers.append(nm.Affine(64, 512))  # a bigger file: its data lies further out
    new_model.save_parameters(tmp_path / "other.h5")
    opened = h5py.File

    def replaced_first(name, *args, **kwargs):
        if os.path.exists(tmp_path / "other.h5"):
            os.replace(tmp_path / "other.h5", path)
        return opened(name, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", replaced_first)
    randomize(model, 3)
    model.load_parameters(path, strict=False)  # the old file's keys, all of them
    assert_values(model, old)


# --- the crash probe ----------------------------------------------------------------------------


@pytest.fixture
def nnabla_file(tmp_path):
    """A file written by nn.save_parameters (no checksums: it gets the probe)."""
    model = Net(name="net")
    values = randomize(model, 4)
    nn.save_parameters(str(tmp_path / "nnabla.h5"))
    randomize(model, 5)
    return model, tmp_path / "nnabla.h5", values


@pytest.fixture
def unusual_file(tmp_path):
    """An unchecksummed file that Python cannot vouch for (chunked): it gets the child process."""
    model = Net(name="net")
    values = randomize(model, 4)
    with h5py.File(tmp_path / "chunked.h5", "w") as handle:  # h5py's defaults: no checksums
        for key, value in values.items():
            handle.create_dataset(key, data=value, chunks=True).attrs["need_grad"] = True
    randomize(model, 5)
    return model, tmp_path / "chunked.h5", values


@contextlib.contextmanager
def sigchld(handler):
    previous = signal.signal(signal.SIGCHLD, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGCHLD, previous)


def _reap(signum, frame):
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


@pytest.mark.parametrize("handler", [signal.SIG_IGN, _reap], ids=["ignored", "reaped"])
def test_the_probe_does_not_depend_on_sigchld(unusual_file, handler):
    model, path, values = unusual_file
    with sigchld(handler):
        model.load_parameters(path)
    assert_values(model, values)


def test_a_process_that_cannot_start_children_still_loads_a_valid_file(unusual_file, monkeypatch):
    model, path, values = unusual_file

    def refused(*args, **kwargs):
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refused)
    monkeypatch.setattr(subprocess.Popen, "_execute_child", refused)
    with pytest.warns(RuntimeWarning, match="reading it unchecked"):
        model.load_parameters(path)
    assert_values(model, values)


def test_ctrl_c_during_the_probe_leaves_no_child(unusual_file):
    model, path, _ = unusual_file
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    timer = threading.Timer(0.02, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                model.load_parameters(path)
    finally:
        timer.cancel()
    with pytest.raises(ChildProcessError):  # no child at all: none running, no zombie
        os.waitpid(-1, os.WNOHANG)


def test_nnabla_files_are_checked_in_python_without_a_child_process(nnabla_file, monkeypatch):
    model, path, values = nnabla_file

    def no_probe(stream, label):
        raise AssertionError("a plain nn.save_parameters file needs no child process")

    monkeypatch.setattr(_h5, "probe", no_probe)
    model.load_parameters(path)
    assert_values(model, values)


def test_unusual_files_are_probed_however_they_are_given(tmp_path, monkeypatch):
    """An unchecksummed file Python cannot vouch for is probed from a path, a stream,
    bytes in memory and an .nnp member alike."""
    model = nm.Affine(4, 3, name="fc")
    model.get_parameters()
    path = tmp_path / "chunked.h5"
    with h5py.File(path, "w") as handle:  # h5py's defaults: no checksums
        for key, param in model.get_parameters().items():
            dataset = handle.create_dataset(key, data=np.ones(param.shape), chunks=True)
            dataset.attrs["need_grad"] = True
    data = path.read_bytes()
    archive_path = tmp_path / "chunked.nnp"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr("parameter.h5", data)
    sources = [
        (path, None),
        (open(path, "rb"), ".h5"),  # noqa: SIM115 (closed below)
        (stdio.BytesIO(data), ".h5"),
        (archive_path, None),
    ]
    probed, probe = [], _h5.probe

    def counted(stream, label):
        probed.append(label)
        return probe(stream, label)

    monkeypatch.setattr(_h5, "probe", counted)
    for source, extension in sources:
        model.load_parameters(source, extension=extension)
    assert len(probed) == 4, probed
    monkeypatch.setattr(_h5, "probe", lambda stream, label: False)  # as if HDF5 had crashed
    for source, extension in sources:
        if hasattr(source, "seek"):
            source.seek(0)
        with pytest.raises(files.ParameterFileError, match="crashed the HDF5 library"):
            model.load_parameters(source, extension=extension)
    sources[1][0].close()


def test_the_undo_keeps_values_last_written_in_another_dtype(tmp_path):
    """The old values are read with read access: a half-precision copy written last counts."""
    model = Net()
    randomize(model, 1)
    model.save_parameters(tmp_path / "net.h5")
    for param in model.get_parameters(grad_only=False).values():
        param.data.cast(np.float16)[...] = 2.0  # the float16 copy is now the current one

    def fail():
        raise KeyboardInterrupt("injected")

    with files.open_parameters(tmp_path / "net.h5") as stored:
        _interrupting(stored, 20, fail)
        with pytest.raises(KeyboardInterrupt):
            checkpoint._load(model, stored, "net.h5", strict=True)
    for key, value in values_of(model).items():
        assert (value == 2.0).all(), key
