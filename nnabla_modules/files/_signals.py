"""Signals during a load: recorded, then delivered where the load can stop cleanly.

A signal whose Python handler raises (Ctrl-C, a ``SIGTERM`` handler calling
``sys.exit``) must neither interrupt a load's writes nor be lost: raised inside
h5py's cleanup code, Python could only print it. See docs/checkpoints.md.
"""

import contextlib
import signal
import sys
import threading

_HOLDING: "list[_HeldSignals]" = []  # the main thread's outermost block's, while it runs


@contextlib.contextmanager
def interrupts_held_back():
    """Delivers signals with Python handlers that arrive inside the block when it ends.

    Every signal whose handler is Python code (Ctrl-C's ``KeyboardInterrupt``, a
    ``SIGTERM`` handler that calls ``sys.exit``, ...) is recorded instead, and
    its handler run once the block is over (or at a :func:`deliver_pending`
    inside it): see :class:`_HeldSignals`. Inside another such block, the
    outer one delivers. Python runs handlers in the main thread only:
    elsewhere nothing is needed.
    """
    if threading.current_thread() is not threading.main_thread() or _HOLDING:
        yield
        return
    held = _HeldSignals()
    _HOLDING.append(held)
    try:
        held.install()
        yield
    finally:
        _HOLDING.pop()
        held.release()


def deliver_pending():
    """Where a load can stop with nothing changed: the handlers of what arrived run now.

    What a handler raises is marked (:func:`raised_by_a_handler`), so that a reader that
    turns the errors of a damaged file into ``ParameterFileError`` lets it through as it is.
    """
    if _HOLDING and threading.current_thread() is threading.main_thread():
        try:
            _HOLDING[-1].deliver(final=False)
        except Exception as error:
            with contextlib.suppress(AttributeError):  # an exception type without a __dict__
                error.raised_by_a_signal_handler = True
            raise


def raised_by_a_handler(error):
    """Whether :func:`deliver_pending` raised ``error`` from a signal's handler."""
    return getattr(error, "raised_by_a_signal_handler", False)


class _HeldSignals:
    """Signal handlers that record what arrives, then deliver it and put the handlers back.

    On release, each recorded signal's own handler runs, in the order they
    arrived (a signal arriving twice meanwhile runs once, as the OS merges a
    blocked signal), every one of them even when one raises: the exceptions
    chain as if the signals had arrived just after the block, the last one's
    raised. Then every handler is put back exactly (one that a delivered
    handler set stays), even if a signal arrives meanwhile: until its own
    handler is back, the recorder passes it on.
    """

    def __init__(self):
        self.previous = {}
        for number in signal.valid_signals():
            with contextlib.suppress(OSError, ValueError):
                handler = signal.getsignal(number)
                if callable(handler):  # neither SIG_DFL, SIG_IGN nor a handler set in C (None)
                    self.previous[number] = handler
        self.received = []
        self.recording = True

    def record(self, number, frame):
        if not self.recording:
            self.previous[number](number, frame)  # delivered now: the block is over
        elif number not in self.received:
            self.received.append(number)

    def install(self):
        for number in self.previous:
            signal.signal(number, self.record)

    def release(self):
        try:
            self.deliver(final=True)
        finally:
            self._restore()

    def deliver(self, final):
        """Runs each recorded signal's handler, in order; one raising does not stop the rest.

        ``final``: stop recording; what arrives from then on is passed on at once.
        """
        if not self.received:
            if not final:
                return
            self.recording = False
            if not self.received:  # nothing arrived between the check and the switch
                return
        number = self.received.pop(0)
        try:
            self.previous[number](number, sys._getframe())
        finally:
            self.deliver(final)

    def _restore(self):
        """Puts each handler back, unless one delivered above set another one."""
        raised = []
        for number, handler in self.previous.items():
            while signal.getsignal(number) == self.record:
                try:
                    signal.signal(number, handler)
                except BaseException as error:  # a handler ran meanwhile (Ctrl-C)
                    raised.append(error)
        _raise_chained(raised)


def _raise_chained(errors):
    """Raises each of ``errors`` in turn, as if each had arrived while the one before was raised.

    The last one is raised, the others are its ``__context__`` chain.
    """
    if errors:
        try:
            raise errors[0]
        finally:
            _raise_chained(errors[1:])
