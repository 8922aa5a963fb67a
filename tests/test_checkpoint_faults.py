"""Saves and loads under faults: full disks, signals, permissions, links, other users, races.

See docs/checkpoints.md, "Guarantees and limits". Tests that need root (a
tmpfs mount, another user) run when the suite runs as root and skip otherwise.
"""

import contextlib
import errno
import io as stdio
import os
import pathlib
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zipfile

import h5py
import nnabla as nn
import numpy as np
import pytest
from conftest import at_write
from crafted_h5 import outcome_in_a_child

import nnabla_modules as nm
from nnabla_modules import checkpoint, files
from nnabla_modules.files import _h5_probe

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


@pytest.fixture
def open_tmp(tmp_path):
    """A folder every user can reach (pytest's own folders are private to their user)."""
    folder = tempfile.mkdtemp(prefix="nm-test-", dir="/tmp" if os.path.isdir("/tmp") else None)
    os.chmod(folder, 0o755)
    yield pathlib.Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


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
    """Makes the read of the ``after``-th parameter of ``stored`` run ``action`` first."""
    param = list(stored.values())[after]
    read, reads = param._read_into, []

    def interrupted(out):
        reads.append(1)
        action()
        read(out)

    param._read_into = interrupted
    return reads


def test_a_sigterm_handler_raising_systemexit_mid_load_waits_for_the_whole_load(
    tmp_path, monkeypatch
):
    model = Net()
    saved = randomize(model, 1)
    model.save_parameters(tmp_path / "net.h5")
    randomize(model, 2)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(3))
    try:
        at_write(monkeypatch, 6, lambda: os.kill(os.getpid(), signal.SIGTERM))
        with pytest.raises(SystemExit) as caught:
            model.load_parameters(tmp_path / "net.h5")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert caught.value.code == 3
    assert_values(model, saved)  # all 32 arrays, then the exit


def test_a_load_reads_each_value_of_the_file_once(tmp_path):
    """One read per value, before any is written: nothing read twice, no second pass to fail."""
    model = Net()
    saved = randomize(model, 1)
    model.save_parameters(tmp_path / "net.h5")
    randomize(model, 2)
    with files.open_parameters(tmp_path / "net.h5") as stored:
        reads = [_interrupting(stored, index, lambda: None) for index in range(len(stored))]
        checkpoint._load(model, stored, "net.h5", strict=True)
    assert [len(r) for r in reads] == [1] * 32
    assert_values(model, saved)


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit, OSError, MemoryError])
def test_any_exception_while_the_values_are_read_changes_nothing(tmp_path, error):
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


def test_every_signal_held_back_is_delivered_in_order_even_after_one_raises(
    tmp_path, monkeypatch
):
    model = Net()
    saved = randomize(model, 1)
    model.save_parameters(tmp_path / "net.h5")
    randomize(model, 2)
    log = []

    def stop(signum, frame):
        log.append("term")
        sys.exit(3)

    handlers = {
        signal.SIGUSR2: lambda signum, frame: log.append("usr2"),
        signal.SIGUSR1: lambda signum, frame: log.append("usr1"),
        signal.SIGINT: signal.default_int_handler,  # raises KeyboardInterrupt
        signal.SIGTERM: stop,  # a service's stop request: must not be lost
    }
    previous = {number: signal.signal(number, handler) for number, handler in handlers.items()}

    def send_all():
        for number in handlers:
            os.kill(os.getpid(), number)

    try:
        at_write(monkeypatch, 6, send_all)  # while writing in place
        with pytest.raises(SystemExit) as caught:
            model.load_parameters(tmp_path / "net.h5")
        assert log == ["usr2", "usr1", "term"]  # as they arrived, SIGTERM after Ctrl-C raised
        assert caught.value.code == 3
        assert isinstance(caught.value.__context__, KeyboardInterrupt)
        assert all(signal.getsignal(n) is h for n, h in handlers.items())
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    assert_values(model, saved)


def test_ctrl_c_while_the_handlers_are_put_back_leaves_every_handler_as_it_was(
    tmp_path, monkeypatch
):
    model = Net()
    saved = randomize(model, 1)
    model.save_parameters(tmp_path / "net.h5")
    randomize(model, 2)
    terminated = []

    def stop(signum, frame):
        terminated.append(signum)

    set_handler, sent = signal.signal, []

    def set_then_ctrl_c(number, handler):
        result = set_handler(number, handler)
        if handler is signal.default_int_handler and not sent:  # SIGINT's put back first
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)
        return result

    previous = set_handler(signal.SIGTERM, stop)
    try:
        monkeypatch.setattr(signal, "signal", set_then_ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            model.load_parameters(tmp_path / "net.h5")
        monkeypatch.undo()
        assert sent
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is stop  # not the load's recorder
        os.kill(os.getpid(), signal.SIGTERM)
        assert terminated == [signal.SIGTERM]
    finally:
        set_handler(signal.SIGTERM, previous)
    assert_values(model, saved)


LOADING_CHILD = """
import signal, sys, time
import nnabla_modules as nm

path, marker = sys.argv[1], sys.argv[2]


def stop(signum, frame):
    with open(marker, "w") as handle:
        handle.write("stopped")
    sys.exit(3)


signal.signal(signal.SIGTERM, stop)
model = nm.Sequential(*[nm.Linear(500, 500) for _ in range(10)], name="m")
if sys.argv[3] == "save":
    model.save_parameters(path)
    sys.exit(0)
print("loading", flush=True)
try:
    while True:
        model.load_parameters(path)
except KeyboardInterrupt:  # between two loads Python raises it at once, as it should
    time.sleep(60)  # the stop request sent just after it ends this (exit status 3)
    sys.exit(4)
"""


def test_ctrl_c_and_a_stop_request_at_any_time_of_a_load_are_both_delivered(tmp_path):
    """Real signals from another process, at random times: HDF5's cleanup code must lose none."""
    path = tmp_path / "m.h5"
    assert run_child(LOADING_CHILD, path, "-", "save").returncode == 0
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rng = np.random.default_rng(0)
    for trial in range(6):
        marker = tmp_path / f"stopped{trial}"
        child = subprocess.Popen(
            [sys.executable, "-c", LOADING_CHILD, str(path), str(marker), "load"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            child.stdout.readline()
            time.sleep(rng.uniform(0.05, 0.3))
            child.send_signal(signal.SIGINT)
            child.send_signal(signal.SIGTERM)
            _, err = child.communicate(timeout=60)
        finally:
            child.kill()
            child.wait()
        assert marker.exists() and child.returncode == 3, (trial, child.returncode, err[-2000:])


class Stop(Exception):
    """What a service's SIGTERM handler may raise."""


@pytest.mark.parametrize("raised", [KeyboardInterrupt, Stop])
def test_a_signal_during_a_long_protobuf_scan_is_delivered_while_it_scans(
    tmp_path, monkeypatch, raised
):
    """A .protobuf file of a million small unknown fields takes seconds to scan; a Ctrl-C
    meanwhile must not wait for the scan's end: nothing is changed yet."""
    from nnabla_modules.files import _protobuf

    path = tmp_path / "fields.protobuf"
    path.write_bytes(b"\x10\x00" * 1_000_000)  # field 2, the varint 0: unknown, skipped
    calls, varint = [0], _protobuf._Stream.varint

    def counted(stream, end):
        calls[0] += 1
        if calls[0] == 1000:
            os.kill(os.getpid(), signal.SIGUSR1)
        return varint(stream, end)

    def stop(signum, frame):  # as Ctrl-C's handler does
        raise raised(calls[0])

    monkeypatch.setattr(_protobuf._Stream, "varint", counted)
    previous = signal.signal(signal.SIGUSR1, stop)
    try:
        with pytest.raises(raised) as caught:  # as it is, not a ParameterFileError
            Net().load_parameters(path)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert caught.value.args[0] < 100_000, caught.value.args  # not 2,000,000: the whole file


def test_a_handler_set_by_a_delivered_handler_stays(tmp_path, monkeypatch):
    model = Net()
    model.save_parameters(tmp_path / "net.h5")

    def stop_listening(signum, frame):  # the first SIGUSR1 turns further ones off
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)

    previous = signal.signal(signal.SIGUSR1, stop_listening)
    try:
        at_write(monkeypatch, 4, lambda: os.kill(os.getpid(), signal.SIGUSR1))
        model.load_parameters(tmp_path / "net.h5")
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_signals_arriving_while_the_handlers_are_put_back_all_raise_in_order(
    tmp_path, monkeypatch
):
    model = Net()
    model.save_parameters(tmp_path / "net.h5")

    def stop(signum, frame):
        sys.exit(3)

    set_handler, sent = signal.signal, []

    def set_then_signal(number, handler):  # each signal just after its handler is back
        result = set_handler(number, handler)
        if handler in (signal.default_int_handler, stop) and number not in sent:
            sent.append(number)
            os.kill(os.getpid(), number)
        return result

    previous = set_handler(signal.SIGTERM, stop)
    try:
        monkeypatch.setattr(signal, "signal", set_then_signal)
        with pytest.raises(SystemExit) as caught:
            model.load_parameters(tmp_path / "net.h5")
        monkeypatch.undo()
        assert sent == [signal.SIGINT, signal.SIGTERM]
        assert isinstance(caught.value.__context__, KeyboardInterrupt)  # neither one lost
        assert signal.getsignal(signal.SIGTERM) is stop
    finally:
        set_handler(signal.SIGTERM, previous)


def _ctrl_c_when_dataset_closes(monkeypatch, which):
    """Sends SIGINT from the Python code h5py runs when the ``which``-th dataset is closed."""
    import weakref

    create, created = h5py.Group.create_dataset, []

    def create_then_signal(self, *args, **kwargs):
        dataset = create(self, *args, **kwargs)
        created.append(args[0])  # the name: the dataset must die where the save lets it
        if len(created) == which:
            weakref.finalize(dataset.id, os.kill, os.getpid(), signal.SIGINT)
        return dataset

    monkeypatch.setattr(h5py.Group, "create_dataset", create_then_signal)
    return created


@pytest.mark.parametrize("target", ["path", "file object"])
def test_ctrl_c_inside_h5pys_cleanup_during_a_save_reaches_the_caller(
    tmp_path, monkeypatch, target
):
    """Raised where h5py closes a dataset, a Ctrl-C is only printed: the save must not go on."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    model = Net()
    saved = randomize(model, 1)
    model.save_parameters(tmp_path / "net.h5")
    randomize(model, 2)
    created = _ctrl_c_when_dataset_closes(monkeypatch, 3)
    buffer = stdio.BytesIO()
    with pytest.raises(KeyboardInterrupt):
        if target == "path":
            model.save_parameters(tmp_path / "net.h5")
        else:
            model.save_parameters(buffer, extension=".h5")
    assert len(created) < 32  # stopped between datasets, not after the whole file
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.undo()
    model.load_parameters(tmp_path / "net.h5")
    assert_values(model, saved)  # the previous file, intact
    assert sorted(os.listdir(tmp_path)) == ["net.h5"]  # no temporary left


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_ctrl_c_as_a_save_opens_the_file_it_replaces_leaves_no_descriptor_open(
    tmp_path, monkeypatch
):
    """The save opens the file it replaces for writing (is it writable?) and closes it; a
    Ctrl-C arriving just after the open waits for the close, then undoes the save."""
    path = tmp_path / "model.h5"
    files.write_parameters(path, {"w": np.zeros(2, np.float32)})
    opened, sent = os.open, []

    def open_then_ctrl_c(name, flags, *args, **kwargs):
        descriptor = opened(name, flags, *args, **kwargs)
        if not sent and os.fspath(name) == str(path) and flags & os.O_WRONLY:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)
        return descriptor

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "open", open_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        files.write_parameters(path, {"w": np.ones(2, np.float32)})
    monkeypatch.undo()
    assert sent and len(os.listdir("/proc/self/fd")) == before
    assert files.read_parameters(path)["w"][0][0] == 0.0 and temporaries(tmp_path) == []


def test_a_file_failing_at_its_last_value_changes_nothing(tmp_path):
    model = Net()
    randomize(model, 1)
    model.save_parameters(tmp_path / "net.h5")
    before = randomize(model, 2)

    def fail():
        raise OSError(errno.EIO, "Input/output error")

    with files.open_parameters(tmp_path / "net.h5") as stored:
        _interrupting(stored, 31, fail)  # 31 values read fine, then the disk fails
        with pytest.raises(OSError, match="Input/output") as caught:
            checkpoint._load(model, stored, "net.h5", strict=True)
    assert any("nothing was changed" in n for n in caught.value.__notes__)
    assert_values(model, before)


# --- permissions, links, other users ------------------------------------------------------------


def _save_over_write_protected(folder):
    path = os.path.join(folder, "model.h5")
    try:
        files.write_parameters(path, {"new": np.zeros(2, np.float32)})
    except PermissionError as error:
        assert error.filename == path, error
        return "refused"
    return "replaced"


def test_a_write_protected_checkpoint_is_refused_like_open_refuses_it(open_tmp):
    path = open_tmp / "model.h5"
    files.write_parameters(path, {"old": np.ones(2, np.float32)})
    os.chmod(path, 0o444)
    previous = path.read_bytes()
    if IS_ROOT:  # root may write anything: the refusal is checked as another user
        os.chmod(open_tmp, 0o777)  # the folder would allow the rename
        assert as_nobody(lambda: _save_over_write_protected(str(open_tmp))) == "'refused'"
    else:
        assert _save_over_write_protected(str(open_tmp)) == "refused"
    assert path.read_bytes() == previous


@needs_root
@pytest.mark.parametrize("attribute", ["+i", "+a"], ids=["immutable", "append-only"])
def test_an_immutable_or_append_only_checkpoint_is_refused_in_the_oss_words(
    open_tmp, attribute
):
    """chattr +i or +a: open(path, "w") says "Operation not permitted", even to root; the
    save says so before writing anything, not "change its mode", not a folder's fault."""
    path = open_tmp / "model.h5"
    files.write_parameters(path, {"old": np.ones(2, np.float32)})
    previous = path.read_bytes()
    if shutil.which("chattr") is None:
        pytest.skip("no chattr")
    if subprocess.run(["chattr", attribute, str(path)], capture_output=True).returncode:
        pytest.skip(f"{open_tmp}'s file system takes no chattr {attribute}")
    try:
        with pytest.raises(PermissionError) as caught:
            files.write_parameters(path, {"new": np.zeros(2, np.float32)})
    finally:
        subprocess.run(["chattr", "-" + attribute[1:], str(path)], check=True)
    assert caught.value.errno == errno.EPERM and caught.value.filename == str(path)
    assert "Operation not permitted" in str(caught.value) and "folder" not in str(caught.value)
    assert "change its mode" not in str(caught.value)
    assert path.read_bytes() == previous and temporaries(open_tmp) == []


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


@needs_root
def test_a_link_another_user_planted_in_a_shared_folder_is_not_followed(open_tmp):
    """/tmp/model.h5 -> /etc/important, planted by another user: root's save would replace
    the file it points to. The kernel's protected_symlinks makes open() refuse such a link;
    the save's rename would not ask the kernel."""
    shared = open_tmp / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # as /tmp is
    (open_tmp / "private").mkdir()
    important = open_tmp / "private" / "important"
    important.write_bytes(b"not weights")
    link = shared / "model.h5"
    os.symlink(important, link)
    nobody = pwd.getpwnam("nobody")
    os.lchown(link, nobody.pw_uid, nobody.pw_gid)  # planted by nobody
    outcome = _save(link)
    assert "PermissionError" in outcome and "another user" in outcome and "model.h5" in outcome
    assert important.read_bytes() == b"not weights" and os.path.islink(link)
    assert temporaries(shared) == [] and temporaries(important.parent) == []
    os.lchown(link, 0, 0)  # root's own link is followed
    assert _save(link) == "saved"
    assert list(files.read_parameters(important, ".h5")) == ["w"] and os.path.islink(link)


def test_saving_over_a_private_checkpoint_never_exposes_the_new_weights(open_tmp, monkeypatch):
    path = open_tmp / "model.h5"
    files.write_parameters(path, {"w": np.ones(2, np.float32)})
    os.chmod(path, 0o600)
    seen = []
    values = files.written_values

    def look(value, *args):  # mid-save: what does the temporary allow?
        for name in temporaries(open_tmp):
            temporary = str(open_tmp / name)
            seen.append(os.stat(temporary).st_mode & 0o777)
            if IS_ROOT:
                seen.append(as_nobody(lambda t=temporary: open(t, "rb").read(1)))
        return values(value, *args)

    monkeypatch.setattr(files, "written_values", look)
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


# --- what a save replaces: owner, group, special files, mounts, folders ------------------------

DAEMON, ADM = 1, 4  # two groups that neither root nor nobody belong to here


def _save(path, value=0.0):
    """Saves one parameter to ``path`` (.h5); ``"saved"`` or the error's type and text."""
    try:
        files.write_parameters(path, {"w": np.full(2, value, np.float32)}, extension=".h5")
    except OSError as error:
        return f"{type(error).__name__} {error}"
    return "saved"


def _setgid_folder(parent, mode):
    folder = parent / "shared"
    folder.mkdir()
    os.chown(folder, 0, DAEMON)
    os.chmod(folder, mode | stat.S_ISGID)  # new files get the folder's group
    return folder


@needs_root
def test_saving_over_a_file_keeps_its_owner_group_and_mode(open_tmp):
    path = _setgid_folder(open_tmp, 0o775) / "model.h5"
    assert _save(path) == "saved"
    nobody = pwd.getpwnam("nobody")
    os.chown(path, nobody.pw_uid, ADM)
    os.chmod(path, 0o640)
    assert _save(path, 1.0) == "saved"
    status = os.stat(path)
    assert (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) == (
        nobody.pw_uid,
        ADM,
        0o640,
    )
    assert files.read_parameters(path)["w"][0][0] == 1.0


ACCESS_LIST = "system.posix_acl_access"  # Linux's POSIX ACLs, as setfacl writes them


def _access_list(*entries):
    """A POSIX access control list as the kernel stores it: ``(tag, permissions, id)``s."""
    data = (2).to_bytes(4, "little")  # its version
    for tag, permissions, owner in entries:
        data += tag.to_bytes(2, "little") + permissions.to_bytes(2, "little")
        data += (owner & 0xFFFFFFFF).to_bytes(4, "little")
    return data


@needs_root
def test_saving_over_a_file_keeps_its_access_control_list(open_tmp):
    """setfacl -m u:daemon:r,g::- on a 0640 file: its group reads nothing, though the mode's
    group bits (the list's mask) say r. Kept as the mode alone, the group could read it."""
    if not hasattr(os, "setxattr"):
        pytest.skip("POSIX ACLs are Linux's")
    path = open_tmp / "model.h5"
    assert _save(path) == "saved"
    nobody = pwd.getpwnam("nobody")
    os.chown(path, 0, nobody.pw_gid)
    user_obj, user, group_obj, mask, other = 0x01, 0x02, 0x04, 0x10, 0x20
    acl = _access_list(
        (user_obj, 6, -1), (user, 4, DAEMON), (group_obj, 0, -1), (mask, 4, -1), (other, 0, -1)
    )
    try:
        os.setxattr(path, ACCESS_LIST, acl)
    except OSError as error:
        pytest.skip(f"no POSIX ACLs on {open_tmp}: {error}")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert "PermissionError" in as_nobody(lambda: path.read_bytes())
    assert _save(path, 1.0) == "saved"
    assert os.getxattr(path, ACCESS_LIST) == acl
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert "PermissionError" in as_nobody(lambda: path.read_bytes())  # the group still cannot
    assert files.read_parameters(path)["w"][0][0] == 1.0


@needs_root
def test_saving_over_a_file_without_an_access_list_gives_it_none_from_its_folder(open_tmp):
    """A folder's default list (setfacl -d -m u:daemon:rw), set after the file was made:
    a new file takes it, as open() gives it, but a replaced file grants no one more."""
    if not hasattr(os, "setxattr"):
        pytest.skip("POSIX ACLs are Linux's")
    path = open_tmp / "model.h5"
    assert _save(path) == "saved"
    os.chmod(path, 0o640)
    user_obj, user, group_obj, mask, other = 0x01, 0x02, 0x04, 0x10, 0x20
    default = _access_list(
        (user_obj, 6, -1), (user, 6, DAEMON), (group_obj, 4, -1), (mask, 6, -1), (other, 0, -1)
    )
    try:
        os.setxattr(open_tmp, "system.posix_acl_default", default)
    except OSError as error:
        pytest.skip(f"no POSIX ACLs on {open_tmp}: {error}")
    assert _save(path, 1.0) == "saved"
    assert ACCESS_LIST not in os.listxattr(path)  # daemon may not read it, as before
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert files.read_parameters(path)["w"][0][0] == 1.0
    assert _save(open_tmp / "new.h5") == "saved"  # a new file: what open() gives
    assert ACCESS_LIST in os.listxattr(open_tmp / "new.h5")


@needs_root
def test_a_group_the_saver_cannot_keep_is_refused_when_it_could_read(open_tmp):
    path = _setgid_folder(open_tmp, 0o777) / "model.h5"
    assert _save(path) == "saved"
    nobody = pwd.getpwnam("nobody")
    os.chown(path, nobody.pw_uid, ADM)
    os.chmod(path, 0o660)  # adm may read it; the folder's group (daemon) may not
    outcome = as_nobody(lambda: _save(str(path), 1.0))
    assert "PermissionError" in outcome and "group (adm) cannot be kept" in outcome, outcome
    assert os.stat(path).st_gid == ADM and files.read_parameters(path)["w"][0][0] == 0.0
    os.chmod(path, 0o600)  # the group reads nothing: the save goes on, in the folder's group
    assert as_nobody(lambda: _save(str(path), 2.0)) == "'saved'"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_write_error_that_names_no_file_names_the_users_path(tmp_path):
    """A full disk while a .protobuf is written: Python's write error names no file."""
    from nnabla_modules.files import _atomic

    def full_disk(temporary):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left on device") as caught:
        _atomic.write_atomically(tmp_path / "model.protobuf", full_disk)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(tmp_path / "model.protobuf")
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("ext", [".h5", ".protobuf", ".nnp", ".nntxt"])
def test_loading_a_pipe_or_a_device_is_refused_before_it_is_opened(tmp_path, ext):
    """A named pipe without a writer would block the load for good (Ctrl-C is held back
    during a load), and a device such as /dev/zero would be read without end."""
    pipe = tmp_path / f"pipe{ext}"
    os.mkfifo(pipe)
    device = tmp_path / f"zero{ext}"
    device.symlink_to("/dev/zero")
    for path, kind in ((pipe, "a named pipe"), (device, "a character device")):
        with pytest.raises(files.ParameterFileError, match=f"not a regular file but {kind}"):
            Net().load_parameters(path)
        with pytest.raises(files.ParameterFileError, match=kind):
            files.read_parameters(path)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux's /proc")
def test_a_text_file_is_read_for_no_more_than_its_size(tmp_path):
    """Files of /proc and /sys have size 0 but yield text, or block for good when read to
    their end (/proc/kmsg): an .nntxt load reads what the file's size says."""
    status = tmp_path / "status.nntxt"
    status.symlink_to("/proc/self/status")  # text that is no .nntxt: read, an error
    assert files.read_parameters(status) == {}
    with open("/proc/self/status", "rb") as handle:
        assert files.read_parameters(handle, extension=".nntxt") == {}
    if os.access("/proc/kmsg", os.R_OK):  # root: blocks until the kernel logs something
        kmsg = tmp_path / "kmsg.nntxt"
        kmsg.symlink_to("/proc/kmsg")
        assert outcome_in_a_child(lambda: files.read_parameters(kmsg), seconds=5) == "returned"


def _good_file_bytes(tmp_path, ext):
    """The bytes of a file of ``Net``'s parameters in the format ``ext``."""
    from google.protobuf import text_format
    from nnabla.utils import nnabla_pb2

    Net().save_parameters(tmp_path / "good.h5")
    Net().save_parameters(tmp_path / "good.protobuf")
    if ext == ".nnp":
        with zipfile.ZipFile(tmp_path / "good.nnp", "w") as archive:
            archive.write(tmp_path / "good.h5", "parameter.h5")
    elif ext == ".nntxt":
        message = nnabla_pb2.NNablaProtoBuf()
        message.ParseFromString((tmp_path / "good.protobuf").read_bytes())
        (tmp_path / "good.nntxt").write_text(text_format.MessageToString(message))
    return (tmp_path / f"good{ext}").read_bytes()


@pytest.mark.skipif(not hasattr(os, "fork") or not os.path.exists("/dev/zero"), reason="POSIX")
@pytest.mark.parametrize("ext", [".h5", ".protobuf", ".nnp", ".nntxt"])
def test_a_pipe_or_a_device_given_as_a_file_object_is_refused_like_a_path(tmp_path, ext):
    """Read to its end, a pipe whose writer never stops fills the memory, and /dev/zero as a
    .protobuf never ends: a file object's size must be known before a load reads it."""
    data = _good_file_bytes(tmp_path, ext)
    read, write = os.pipe()

    def feed():  # the whole file, unless the load closes the pipe first
        with contextlib.suppress(BrokenPipeError):
            os.write(write, data)
        os.close(write)

    writer = threading.Thread(target=feed)
    writer.start()
    with os.fdopen(read, "rb") as pipe:
        with pytest.raises(files.ParameterFileError, match="a pipe, whose size is unknown"):
            Net().load_parameters(pipe, extension=ext)
    writer.join()

    def load_dev_zero():
        with open("/dev/zero", "rb") as device:
            Net().load_parameters(device, extension=ext)

    outcome = outcome_in_a_child(load_dev_zero)
    assert outcome.startswith("ParameterFileError") and "a character device" in outcome, outcome


def test_a_stream_that_cannot_seek_is_refused_and_its_bytes_load(tmp_path):
    model = Net()
    saved = randomize(model, 1)
    model.save_parameters(tmp_path / "net.protobuf")

    class Stream(stdio.RawIOBase):  # a socket's or a decompressor's: read, no seek
        def __init__(self, data):
            self.rest = data

        def readable(self):
            return True

        def readinto(self, buffer):
            size = min(len(buffer), len(self.rest))
            buffer[:size], self.rest = self.rest[:size], self.rest[size:]
            return size

    data = (tmp_path / "net.protobuf").read_bytes()
    randomize(model, 2)
    with pytest.raises(files.ParameterFileError, match="a stream that cannot seek"):
        model.load_parameters(Stream(data), extension=".protobuf")
    model.load_parameters(stdio.BytesIO(Stream(data).read()), extension=".protobuf")
    assert_values(model, saved)


def test_a_named_pipe_is_refused_not_replaced(tmp_path):
    path = tmp_path / "model.h5"
    os.mkfifo(path)
    outcome = _save(path)
    assert "a named pipe" in outcome and "model.h5" in outcome, outcome
    assert stat.S_ISFIFO(os.stat(path).st_mode)
    assert temporaries(tmp_path) == []
    read, write = os.pipe()  # an anonymous pipe, named through /proc (Linux)
    try:
        if os.path.exists(f"/proc/self/fd/{write}"):
            assert "a named pipe" in _save(f"/proc/self/fd/{write}")
    finally:
        os.close(read)
        os.close(write)



def _returns_within(seconds, call, release):
    """``call()``'s result or exception, run in a thread; a call still blocked after
    ``seconds`` is released by ``release()`` and reported as ``"blocked"``."""
    outcome = []

    def run():
        try:
            outcome.append(call())
        except BaseException as error:  # noqa: BLE001 (reported to the test)
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        release()
        thread.join(10)
        return "blocked"
    return outcome[0]


def _open_other_end(pipe, flags):
    with contextlib.suppress(OSError):
        os.close(os.open(pipe, flags | os.O_NONBLOCK))


@pytest.mark.parametrize("ext", [".h5", ".protobuf", ".nnp", ".nntxt"])
def test_a_path_made_a_pipe_after_its_check_is_refused_not_waited_on(tmp_path, ext, monkeypatch):
    """Another user who can write the folder can replace the file by a named pipe between
    the check of what it is and its opening: the load is refused, not blocked for good."""
    pipe = tmp_path / f"model{ext}"
    os.mkfifo(pipe)
    monkeypatch.setattr(files, "special_file", lambda path: None)  # checked as a file
    outcome = _returns_within(
        5, lambda: files.read_parameters(pipe), lambda: _open_other_end(pipe, os.O_WRONLY)
    )
    assert isinstance(outcome, files.ParameterFileError), outcome
    assert "not a regular file but a named pipe" in str(outcome)


def test_a_file_made_a_pipe_after_its_check_is_not_waited_on_by_a_save(tmp_path, monkeypatch):
    from nnabla_modules.files import _atomic

    path = tmp_path / "model.h5"
    assert _save(path) == "saved"
    check = _atomic._refuse_unwritable

    def swapped(target, named):  # another user's swap, just after the file was looked at
        os.unlink(target)
        os.mkfifo(target)
        return check(target, named)

    monkeypatch.setattr(_atomic, "_refuse_unwritable", swapped)
    outcome = _returns_within(5, lambda: _save(path), lambda: _open_other_end(path, os.O_RDONLY))
    assert outcome != "blocked" and "a named pipe" in outcome and "model.h5" in outcome, outcome
    assert temporaries(tmp_path) == []


def test_a_temporary_made_a_link_while_written_gives_nothing_away(tmp_path):
    """In a folder another user can write, the temporary's name can be made a link to any
    file while it is written: the replaced file's owner and mode must not go to that
    file (root's save would give it to the folder's owner), and nothing is installed."""
    from nnabla_modules.files import _atomic

    path = tmp_path / "model.h5"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    other = tmp_path / "other"
    other.write_bytes(b"someone else's")
    os.chmod(other, 0o600)

    def write_then_swap(temporary):
        pathlib.Path(temporary).write_bytes(b"new")
        os.unlink(temporary)
        os.symlink(other, temporary)

    with pytest.raises(OSError, match="replaced while it was written") as caught:
        _atomic.write_atomically(path, write_then_swap)
    assert caught.value.filename == str(path)
    assert stat.S_IMODE(os.stat(other).st_mode) == 0o600
    assert other.read_bytes() == b"someone else's" and path.read_bytes() == b"old"
    assert temporaries(tmp_path) == []

@needs_root
def test_a_device_node_is_refused_not_replaced(tmp_path):
    path = tmp_path / "null.h5"
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    outcome = _save(path)
    assert "a character device" in outcome, outcome
    assert stat.S_ISCHR(os.stat(path).st_mode)


@needs_root
def test_a_single_file_bind_mount_gets_an_error_that_says_why(tmp_path):
    source, path = tmp_path / "outside.h5", tmp_path / "model.h5"
    assert _save(source) == "saved"
    assert _save(path) == "saved"
    done = subprocess.run(["mount", "--bind", str(source), str(path)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot bind-mount a file: {done.stderr.decode().strip()}")
    try:
        outcome = _save(path, 1.0)
    finally:
        subprocess.run(["umount", str(path)], check=False)
    assert "busy" in outcome and "mount point" in outcome and "model.h5" in outcome, outcome
    assert ".tmp" not in outcome and temporaries(tmp_path) == []


@needs_root
def test_a_writable_file_in_a_folder_the_user_cannot_write_names_the_folder(open_tmp):
    folder = open_tmp / "locked"
    folder.mkdir()
    path = folder / "model.h5"
    assert _save(path) == "saved"
    os.chmod(path, 0o666)  # open(path, "w") would work; the rename cannot
    os.chmod(folder, 0o755)
    outcome = as_nobody(lambda: _save(str(path), 1.0))
    assert "PermissionError" in outcome and repr(str(folder)) in outcome, outcome
    assert "renames it over it" in outcome and ".tmp" not in outcome


@needs_root
def test_an_immutable_folder_is_named_in_the_oss_words(open_tmp):
    """chattr +i on the folder: open() says "Operation not permitted" (EPERM), not EACCES."""
    folder = open_tmp / "immutable"
    folder.mkdir()
    assert _save(folder / "model.h5") == "saved"
    if shutil.which("chattr") is None:
        pytest.skip("no chattr")
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip(f"{open_tmp}'s file system takes no chattr +i")
    try:
        outcomes = [_save(folder / name, 1.0) for name in ("model.h5", "new.h5")]
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    for outcome in outcomes:
        assert outcome.startswith("PermissionError [Errno 1] Operation not permitted"), outcome
        assert repr(str(folder)) in outcome and ".tmp" not in outcome
    assert files.read_parameters(folder / "model.h5")["w"][0][0] == 0.0


@needs_root
def test_another_users_file_in_a_sticky_folder_names_the_folder(open_tmp):
    folder = open_tmp / "sticky"
    folder.mkdir()
    os.chmod(folder, 0o1777)  # as /tmp is
    path = folder / "model.h5"
    assert _save(path) == "saved"
    os.chmod(path, 0o606)  # nobody may write it; only its owner may rename over it
    outcome = as_nobody(lambda: _save(str(path), 1.0))
    assert "PermissionError" in outcome and "a sticky folder" in outcome, outcome
    assert repr(str(folder)) in outcome and ".tmp" not in outcome
    assert files.read_parameters(path)["w"][0][0] == 0.0 and temporaries(folder) == []


@needs_root
def test_a_read_only_file_system_is_named_as_such(tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)])
    if done.returncode:
        pytest.skip("cannot mount a tmpfs")
    try:
        assert _save(mount / "model.h5") == "saved"
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        for name in ("model.h5", "new.h5"):  # replacing a file, creating one
            outcome = _save(mount / name, 1.0)
            assert "Read-only file system" in outcome and name in outcome, outcome
            assert "write-protected" not in outcome and ".tmp" not in outcome
    finally:
        subprocess.run(["umount", str(mount)], check=False)


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

    monkeypatch.setattr(_h5_probe, "probe", no_probe)
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
    probed, probe = [], _h5_probe.probe

    def counted(stream, label):
        probed.append(label)
        return probe(stream, label)

    monkeypatch.setattr(_h5_probe, "probe", counted)
    for source, extension in sources:
        model.load_parameters(source, extension=extension)
    assert len(probed) == 4, probed
    def crashed(stream, label):  # what the probe says when HDF5 crashed the child
        raise files.ParameterFileError(f"{label}: reading it crashed the HDF5 library")

    monkeypatch.setattr(_h5_probe, "probe", crashed)
    for source, extension in sources:
        if hasattr(source, "seek"):
            source.seek(0)
        with pytest.raises(files.ParameterFileError, match="crashed the HDF5 library"):
            model.load_parameters(source, extension=extension)
    sources[1][0].close()


def test_the_undo_keeps_values_last_written_in_another_dtype():
    """A load-then-build load keeps the old values it overwrites, read with read access:
    a half-precision copy written last counts."""

    class Half(nm.Module):  # a layer that knows its parameters, one that learns them when called
        def __init__(self):
            self.known = nm.Linear(4, 3)
            self.lazy = nm.Linear(None, 2)

        def __call__(self, x):
            return self.lazy(self.known(x))

    model = Half()
    for param in model.get_parameters(grad_only=False).values():
        param.data.cast(np.float16)[...] = 2.0  # the float16 copy is now the current one
    model.load_state_dict({
        "known/affine/W": np.ones((4, 3)), "known/affine/b": np.ones(3),
        "lazy/affine/W": np.ones((5, 2)), "lazy/affine/b": np.ones(2),  # 5 inputs, not 3
    })  # fmt: skip
    with pytest.raises(checkpoint.CheckpointError, match="undone"):
        model(nn.Variable((1, 4)))
    for key, value in values_of(model).items():
        assert (value == 2.0).all(), key
