"""The module calls and constructions running now: their lock and their state.

NNabla's current parameter scope is one process-wide global, so module calls
and constructions run one at a time, under one lock, and one object holds what
they share. A process forked while another thread ran a call starts afresh.
"""

import os
import threading
from threading import get_ident

import nnabla.parameter as _parameter

#: NNabla's current scope is one process-wide global: module calls and module
#: construction hold this lock, so threads run them one at a time instead of
#: mixing their scopes.
lock = threading.RLock()


class Running:
    """The state of the module calls and constructions running now, in one object.

    They run one at a time (``lock``), so one object serves every thread; a
    process forked while another thread was inside a call starts afresh
    (``_after_fork_in_child``).
    """

    __slots__ = ("active", "thread", "constructing", "creating_early", "frozen_no_grad",
                 "outside", "temporaries", "outer_call_id")

    def __init__(self):
        #: Innermost-last stack of the modules whose call is running (in ``thread``).
        self.active = []
        #: The thread whose module call is running, or None.
        self.thread = None
        #: The modules whose ``__init__`` is running, innermost last: a module built
        #: inside one may refer back to it (``Child(owner=self)``) but never adopts it.
        self.constructing = []
        #: Nonzero while a layer creates its parameters outside a call: nothing is placed then.
        self.creating_early = 0
        #: True while NNabla's ``current_no_grad`` was set by a frozen module, not the user.
        self.frozen_no_grad = False
        #: NNabla's ``(current_scope, current_no_grad)`` before the outermost call began.
        self.outside = None
        #: How many running calls are of temporary modules (built in a call, not held).
        self.temporaries = 0
        #: Counts the calls made while no module call was running.
        self.outer_call_id = 0

    def in_call(self):
        """True while a module call runs in the calling thread."""
        return bool(self.active) and self.thread == get_ident()


running = Running()


def _after_fork_in_child():
    """A child forked while another thread ran a module call or construction.

    That thread does not exist in the child: its lock would never be released
    and its call would never restore NNabla's scope, so the child's first module
    call would hang. The child goes on as if no call had been running.
    """
    if lock._is_owned():  # the forking thread itself is inside a call: it goes on
        return
    lock._at_fork_reinit()
    if running.thread is not None and running.outside is not None:
        _parameter.current_scope, _parameter.current_no_grad = running.outside
    running.__init__()


os.register_at_fork(after_in_child=_after_fork_in_child)
