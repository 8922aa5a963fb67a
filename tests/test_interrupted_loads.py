"""Loads interrupted by signals at their edges: the first call's check, the handlers, forks.

See docs/checkpoints.md, "Loading" and "Guarantees and limits".
"""

import os
import signal
import threading

import nnabla as nn
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from conftest import at_write

import nnabla_modules as nm
from nnabla_modules.checkpoint import CheckpointError


class Headed(nm.Module):
    """A layer that knows its parameters, and PF code whose parameters appear at the call."""

    def __init__(self):
        self.fc = nm.Affine(4, 3)

    def __call__(self, x):
        return PF.affine(self.fc(x), 2, name="head")


def test_ctrl_c_while_a_state_dict_is_written_keeps_the_check_of_the_first_call(monkeypatch):
    """The Ctrl-C waits for the whole load, its first call's check included: a strict load
    of a state dict lacking a key that call creates still fails there, and is undone."""
    source = Headed()
    source(nn.Variable((1, 4)))
    state = source.state_dict()
    del state["head/affine/b"]
    model = Headed()
    before = model.fc.get_parameters()["affine/W"].d.copy()
    at_write(monkeypatch, 1, lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        model.load_state_dict(state)
    monkeypatch.undo()
    assert np.array_equal(model.fc.get_parameters()["affine/W"].d, state["fc/affine/W"])
    assert "head/affine/W" in model.get_parameters()  # taken, until the call shows it fits
    with pytest.raises(CheckpointError, match="missing from the file"):
        model(nn.Variable((1, 4)))
    assert np.array_equal(model.fc.get_parameters()["affine/W"].d, before)  # undone


class Raised(Exception):
    pass


def test_a_signal_raising_while_the_handlers_are_put_back_leaves_each_as_it_was(
    tmp_path, monkeypatch
):
    """SIGUSR1 arrives as the load puts its first handler back (SIGINT's): its handler runs
    and raises there, and every handler is still put back, the values loaded whole."""
    model = nm.Sequential(*[nm.Affine(4, 4) for _ in range(3)])
    model.save_parameters(tmp_path / "net.h5")
    saved = model.state_dict()
    for param in model.get_parameters().values():
        param.d = 0.0

    def usr1(signum, frame):
        raise Raised()

    def term(signum, frame):
        pass

    handlers = {signal.SIGUSR1: usr1, signal.SIGTERM: term}
    previous = {number: signal.signal(number, handler) for number, handler in handlers.items()}
    handlers[signal.SIGINT] = signal.getsignal(signal.SIGINT)
    getsignal, written = signal.getsignal, []

    def getsignal_then_usr1(number):
        handler = getsignal(number)
        if written and number == signal.SIGINT:  # the writes are done: the handlers go back
            written.clear()
            os.kill(os.getpid(), signal.SIGUSR1)
        return handler

    try:
        at_write(monkeypatch, 1, lambda: written.append(1))
        monkeypatch.setattr(signal, "getsignal", getsignal_then_usr1)
        with pytest.raises(Raised):
            model.load_parameters(tmp_path / "net.h5")
        monkeypatch.undo()
        assert {n: signal.getsignal(n) for n in handlers} == handlers
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    for key, value in model.state_dict().items():
        assert np.array_equal(value, saved[key]), key


def _in_child(function):
    """``function()``'s result (or error) in a process forked by another thread, as text."""
    read, write = os.pipe()
    found = []

    def fork():
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child)
            try:
                os.write(write, repr(function()).encode())
            except BaseException as error:  # noqa: B036
                os.write(write, f"error {error!r}".encode())
            finally:
                os._exit(0)
        found.append(pid)

    thread = threading.Thread(target=fork)
    thread.start()
    thread.join()
    os.close(write)
    with os.fdopen(read) as pipe:
        result = pipe.read()
    os.waitpid(found[0], 0)
    return result


def test_a_process_forked_by_another_thread_during_a_load_gets_its_handlers_back(monkeypatch):
    """A data-loader thread forks while the main thread loads: the child's Ctrl-C is its own
    (not recorded for a load that never ends there), and its own loads hold signals back."""
    model = nm.Affine(4, 3)
    state = {key: value + 1 for key, value in model.state_dict().items()}

    def child():
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs at once
                pass
        except KeyboardInterrupt:
            pass
        else:
            return "Ctrl-C was lost"
        writes = at_write(monkeypatch, 1, lambda: os.kill(os.getpid(), signal.SIGINT))
        try:
            model.load_state_dict({key: value + 2 for key, value in state.items()})
        except KeyboardInterrupt:
            return f"interrupted after {len(writes)} writes"
        return "not interrupted"

    outcome = []
    at_write(monkeypatch, 1, lambda: outcome.append(_in_child(child)))
    model.load_state_dict(state)
    monkeypatch.undo()
    assert outcome == ["'interrupted after 2 writes'"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_handler_held_back_runs_with_the_handlers_as_they_were(tmp_path, monkeypatch):
    """A SIGTERM handler that looks up its own handler (to chain to it, to reinstall it)
    finds itself, not the load's recorder."""
    model = nm.Affine(4, 3)
    model.save_parameters(tmp_path / "fc.h5")
    seen = []

    def term(signum, frame):
        seen.append(signal.getsignal(signal.SIGTERM))

    previous = signal.signal(signal.SIGTERM, term)
    try:
        at_write(monkeypatch, 1, lambda: os.kill(os.getpid(), signal.SIGTERM))
        model.load_parameters(tmp_path / "fc.h5")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [term]


def test_a_signal_as_a_load_starts_holding_signals_back_leaves_later_loads_whole(
    tmp_path, monkeypatch
):
    """SIGUSR1's handler raises just as the first load starts holding signals back; a
    Ctrl-C during the writes of the next load still waits for all of them."""
    from nnabla_modules.files import _signals

    model = nm.Sequential(*[nm.Affine(4, 4) for _ in range(3)])
    model.save_parameters(tmp_path / "net.h5")
    saved = model.state_dict()
    for param in model.get_parameters().values():
        param.d = 0.0

    class Arriving(list):
        sent = False

        def append(self, item):
            super().append(item)
            if not self.sent:
                self.sent = True
                os.kill(os.getpid(), signal.SIGUSR1)

    def usr1(signum, frame):
        raise Raised()

    previous = signal.signal(signal.SIGUSR1, usr1)
    try:
        monkeypatch.setattr(_signals, "_HOLDING", Arriving())
        with pytest.raises(Raised):
            model.load_parameters(tmp_path / "net.h5")
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert signal.getsignal(signal.SIGUSR1) is previous
    at_write(monkeypatch, 2, lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        model.load_parameters(tmp_path / "net.h5")
    for key, value in model.state_dict().items():
        assert np.array_equal(value, saved[key]), key


def test_ctrl_c_while_the_first_call_undoes_a_load_waits_for_the_whole_undo(monkeypatch):
    """The first call shows the state dict lacked a key; a Ctrl-C arriving as its undo
    puts the first old value back is raised once every value is back."""
    from nnabla_modules import checkpoint

    source = Headed()
    source(nn.Variable((1, 4)))
    state = source.state_dict()
    del state["head/affine/b"]
    model = Headed()
    before = model.state_dict()
    model.load_state_dict(state)
    restore, sent = checkpoint._Restorer.__call__, []

    def interrupted(self):
        if not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)
        return restore(self)

    monkeypatch.setattr(checkpoint._Restorer, "__call__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model(nn.Variable((1, 4)))
    assert sent
    assert list(model.get_parameters()) == list(before)  # the file's head undone
    for key, value in model.state_dict().items():
        assert np.array_equal(value, before[key]), key


def test_ctrl_c_as_the_first_call_ends_its_check_leaves_later_calls_working(monkeypatch):
    """The Ctrl-C arrives as the check of a load at the first call forgets the modules it
    watched: it is raised once the check is over, and later calls run as usual."""
    from nnabla_modules.core import _state

    source = Headed()
    source(nn.Variable((1, 4)))
    model = Headed()
    model.load_state_dict(source.state_dict())
    unwatch, sent = _state.ModuleState.unwatch, []

    def interrupted(self, pending):
        if not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)
        return unwatch(self, pending)

    monkeypatch.setattr(_state.ModuleState, "unwatch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model(nn.Variable((1, 4)))
    monkeypatch.undo()
    assert sent
    for _ in range(2):
        model(nn.Variable((1, 4)))
    assert list(model.get_parameters()) == list(source.get_parameters())


@pytest.mark.parametrize("snapshot", ["state_dict", "save_parameters", "clone"])
def test_a_snapshot_taken_by_another_thread_during_a_load_is_before_it_or_after_it(
    monkeypatch, snapshot
):
    """Another thread asks for the values while the load writes them: it gets them once
    the load is over, all new, never some of each."""
    import io

    model = nm.Sequential(*[nm.Affine(4, 4) for _ in range(3)])
    new = {key: np.full(value.shape, 2.0, np.float32) for key, value in model.state_dict().items()}
    taken = []

    def take():
        if snapshot == "state_dict":
            taken.append(model.state_dict())
        elif snapshot == "clone":
            taken.append(model.clone().state_dict())
        else:
            buffer = io.BytesIO()
            model.save_parameters(buffer, extension=".h5")
            taken.append({k: v for k, (v, _) in nm.files.read_parameters(buffer, ".h5").items()})

    thread = threading.Thread(target=take)
    at_write(monkeypatch, 3, lambda: (thread.start(), thread.join(timeout=1.0)))
    model.load_state_dict(new)
    thread.join()
    assert {key: float(value.flat[0]) for key, value in taken[0].items()} == dict.fromkeys(new, 2.0)


def test_a_handler_raising_as_a_file_is_opened_is_raised_as_itself(tmp_path, monkeypatch):
    """A SIGALRM-style timeout raising while open_parameters opens a sound file is no
    ParameterFileError: the file is fine (code that skips damaged checkpoints would skip it)."""
    import h5py

    from nnabla_modules import files

    path = tmp_path / "fc.h5"
    files.write_parameters(path, {"fc/W": np.ones((2, 3), np.float32)})
    h5_file = h5py.File

    def opening(*args, **kwargs):
        handle = h5_file(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGUSR1)
        return handle

    def usr1(signum, frame):
        raise Raised()

    previous = signal.signal(signal.SIGUSR1, usr1)
    try:
        monkeypatch.setattr(h5py, "File", opening)
        with pytest.raises(Raised):
            files.read_parameters(path)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    monkeypatch.undo()
    assert float(files.read_parameters(path)["fc/W"][0][0, 0]) == 1.0


@pytest.mark.parametrize("outcome", ["loaded", "refused"])
def test_the_hdf5_objects_of_a_load_are_gone_before_the_signals_it_held_back_run(
    tmp_path, monkeypatch, outcome
):
    """An HDF5 object's death runs Python code (h5py's registry): a stop request's handler
    raising SystemExit there would only be printed. So none may die after a load stops
    holding signals back, even when its error's traceback keeps the load's frames."""
    import weakref

    import h5py

    from nnabla_modules.files import _signals

    nn.clear_parameters()
    model = nm.Sequential(*(nm.Linear(3, 3) for _ in range(3)), name="net")
    path = tmp_path / "net.h5"
    model.save_parameters(path)
    if outcome == "refused":
        nm.Linear(3, 4, name="other").save_parameters(path)
    opened, alive_at_release = [], []

    class RecordedFile(h5py.File):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(weakref.ref(self.id))

    release = _signals._HeldSignals.release

    def checked_release(held):  # only an outermost block has its own _HeldSignals
        alive_at_release.append(sum(ref() is not None for ref in opened))
        return release(held)

    monkeypatch.setattr(h5py, "File", RecordedFile)
    monkeypatch.setattr(_signals._HeldSignals, "release", checked_release)
    try:
        model.load_parameters(path)
    except CheckpointError as error:
        kept = error  # its traceback keeps the load's frames, as a caller's except does
        assert outcome == "refused" and kept.__traceback__ is not None
    assert opened and alive_at_release and alive_at_release[-1] == 0, alive_at_release
