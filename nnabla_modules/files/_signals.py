"""Signals during a load: recorded, then delivered where the load can stop cleanly.

A signal whose Python handler raises (Ctrl-C, a ``SIGTERM`` handler calling
``sys.exit``) must neither interrupt a load's writes nor be lost: raised inside
h5py's cleanup code, Python could only print it. See docs/checkpoints.md.
"""

import contextlib
import os
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
    try:  # Python runs no handler as a ``try`` starts: none between here and ``append``
        _HOLDING.append(held)  # left behind, no later block would hold signals back
        held.install()
        yield
    finally:
        try:
            if held in _HOLDING:
                _HOLDING.remove(held)
        finally:
            held.release()


def deliver_pending():
    """Where a load can stop with nothing changed: the handlers of what arrived run now.

    What a handler raises is marked (:func:`raised_by_a_handler`), so that a reader that
    turns the errors of a damaged file into ``ParameterFileError`` lets it through as it is.
    """
    if _HOLDING and threading.current_thread() is threading.main_thread():
        try:
            _HOLDING[-1].deliver()
        except Exception as error:
            with contextlib.suppress(AttributeError):  # an exception type without a __dict__
                error.raised_by_a_signal_handler = True
            raise


def raised_by_a_handler(error):
    """Whether :func:`deliver_pending` raised ``error`` from a signal's handler."""
    return getattr(error, "raised_by_a_signal_handler", False)


class _HeldSignals:
    """Signal handlers that record what arrives, then put the handlers back and deliver it.

    On release, every handler is put back exactly (one that a delivered
    handler set stays), the recorders recording until then: a signal arriving
    meanwhile is recorded, or, once its own handler is back, runs it. Then each
    recorded signal's own handler runs, in the order they arrived (a signal
    arriving twice meanwhile runs once, as the OS merges a blocked signal),
    every one of them even when one raises: the exceptions chain as if the
    signals had arrived just after the block, the last one's raised.
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
        self.thread = threading.get_ident()  # the main thread, whose block this is

    def record(self, number, frame):
        if not self.recording:
            self.previous[number](number, frame)  # a recorder left behind: passed on
        elif number not in self.received:
            self.received.append(number)

    def install(self):
        for number in self.previous:
            signal.signal(number, self.record)

    def release(self):
        # Each step in the ``finally`` of the one before: a handler raising in
        # one (a signal arriving just after its handler is back) stops no other.
        try:
            self._restore()
        finally:
            try:
                self.deliver()
            finally:
                self.recording = False

    def deliver(self):
        """Runs each recorded signal's handler, in order; one raising does not stop the rest."""
        if self.received:
            try:
                number = self.received.pop(0)
                self.previous[number](number, sys._getframe())
            finally:
                self.deliver()

    def _restore(self, waiting=None):
        """Puts each handler back, unless one delivered mid-block set another one.

        A handler put back may run at once (its signal arriving) and raise at any
        point of the loop: the handlers still ``waiting`` are put back in its
        ``finally``, the exceptions chained, the last one raised.
        """
        waiting = list(self.previous.items()) if waiting is None else waiting
        try:
            while waiting:
                number, handler = waiting[0]
                if signal.getsignal(number) == self.record:
                    signal.signal(number, handler)  # runs what arrived first: may raise
                waiting.pop(0)
        finally:
            if waiting:
                self._restore(waiting)


def _after_fork_in_child():
    """A child forked by another thread while the main thread's block ran.

    The block never ends in the child (the thread running it is not there): its
    recorders would swallow every signal for good (a worker deaf to Ctrl-C), and
    no load of the child would hold signals back. The child's handlers are put
    back as they were outside the block; what the parent recorded is the parent's.
    """
    if not _HOLDING or _HOLDING[0].thread == threading.get_ident():
        return  # nothing held, or the forking thread runs the block: it goes on
    held = _HOLDING.pop()
    held.received.clear()
    held.recording = False
    held._restore()


if hasattr(os, "register_at_fork"):  # not Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
