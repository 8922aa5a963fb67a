"""NNabla's save of a training configuration, given solvers of the docs' recipe.

:func:`nnabla.utils.save.save` reads the solvers of a training configuration:
it gives a network parameter the learning-rate multiplier 1 if its registry key
is a key of the solver, and writes the solver's states under the solver's keys.
A solver given ``model.get_parameters()`` is keyed relative to the model, so
importing the library makes the save read each solver keyed by the registry
(docs/nnabla_process.md).
"""

import contextlib
import functools
from collections import OrderedDict

import nnabla as nn
import nnabla.utils.save as _nnabla_save

from .files._signals import interrupts_held_back


@contextlib.contextmanager
def solvers_keyed_by_the_registry(solvers):
    """While NNabla's save reads them, the solvers keyed by the registry's keys.

    NNabla's save gives a network parameter the learning-rate multiplier 1 if its
    registry key is a key of the solver, and writes the solver's states under the
    solver's keys, which NNabla's load matches with the network's. A solver given
    ``model.get_parameters()`` is keyed relative to the model: for the save, each
    Variable of the registry takes its registry key (the current scope's, as the
    save's), with its state; afterwards the solver has its own keys and states back.
    """
    registry = {param: key for key, param in nn.get_parameters(grad_only=False).items()}
    rekeyed = []
    try:
        with interrupts_held_back():  # a Ctrl-C waits for each solver's keys and states
            for solver in solvers:
                params = solver.get_parameters()
                keys = OrderedDict((registry.get(param, k), k) for k, param in params.items())
                if len(keys) != len(params) or all(new == old for new, old in keys.items()):
                    continue  # keyed by the registry already, or two keys for one Variable
                states = solver.get_states()
                rekeyed.append((solver, params, states))
                solver.set_parameters(OrderedDict((new, params[old]) for new, old in keys.items()))
                solver.set_states(OrderedDict((new, states[old]) for new, old in keys.items()))
        yield
    finally:
        with interrupts_held_back():  # given back whole, even if a Ctrl-C arrives meanwhile
            for solver, params, states in reversed(rekeyed):
                _give_back(solver, params, states)


def _give_back(solver, params, states):
    """The solver's own keys, in its own order, and its states.

    NNabla lists a solver's parameters from a hash map: inserted in the reverse of
    the order it listed, they list in that order again; the order is checked.
    """
    items = list(params.items())
    for order in (items[::-1], items):
        solver.set_parameters(OrderedDict(order))
        if list(solver.get_parameters()) == list(params):
            break
    solver.set_states(states)


def _optimizer_of_a_save(ctx, optimizer, *args, **kwargs):
    """NNabla's save writing an optimizer (multipliers, states in a protobuf): its solver
    keyed by the registry. An ``.nnp`` with solver states then calls NNabla's
    ``save_optimizer_states``, wrapped here first: its module (NNabla's command-line
    tools') is imported by a save, not by the library."""
    import nnabla.utils.cli.utility as cli

    if not getattr(cli.save_optimizer_states, "_keys_solvers", False):
        cli.save_optimizer_states = _state_files_of_a_save(cli.save_optimizer_states)
    with solvers_keyed_by_the_registry([optimizer["solver"]]):
        return _nnabla_create_optimizer(ctx, optimizer, *args, **kwargs)


def _state_files_of_a_save(save_optimizer_states):
    @functools.wraps(save_optimizer_states)
    def state_files(base, extension, config, *args, **kwargs):
        solvers = [o.optimizer.solver for o in config.optimizers.values()]
        with solvers_keyed_by_the_registry(solvers):
            return save_optimizer_states(base, extension, config, *args, **kwargs)

    state_files._keys_solvers = True
    return state_files


_optimizer_of_a_save._keys_solvers = True  # type: ignore[attr-defined]
_nnabla_create_optimizer = _nnabla_save._create_optimizer


def read_solvers_by_registry():
    """Replaces NNabla's ``_create_optimizer`` (once): its save looks it up when it runs,
    however ``save`` was imported."""
    global _nnabla_create_optimizer
    if not getattr(_nnabla_save._create_optimizer, "_keys_solvers", False):
        _nnabla_create_optimizer = _nnabla_save._create_optimizer
        _nnabla_save._create_optimizer = _optimizer_of_a_save
