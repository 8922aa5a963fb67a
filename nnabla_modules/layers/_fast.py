"""The fast path of the five most used layers: PF's graph without PF's per-call work.

Once a layer's parameters exist, ``PF.convolution`` (``deconvolution``,
``affine``, ``batch_normalization``, ``embed``) spends most of its time on
what it finds unchanged: initializers built and thrown away, the scope
entered by name, ``get_parameter_or_create``'s lookups and checks. A layer
records, after a call that went through PF, what that call did: the
registry Variables it read, their shapes and ``need_grad``, and the NNabla
function it built with which arguments. The next call with the same input
shape and the same arguments builds that function directly, with the
Variables obtained exactly as ``get_parameter_or_create`` returns them
(unlinked, named, ``need_grad`` as requested or False under
``nn.no_grad()``), and leaves the registry and the ownership bookkeeping as
PF's call would: only when PF's call would change nothing (a frozen
module's weights included: PF's call sets their flag and the ownership
observer clears it again). Anything else (a new input shape, other
arguments, a registry entry replaced, removed, resized or with another
``need_grad``, an entry the module does not own yet) goes through PF again,
and so does every call while the functions PF's body looks up by name at
call time (``F.affine``..., ``get_parameter_or_create``, NNabla's
``get_parameter``/``set_parameter``) are not the ones the plan was made with:
a profiler or a quantization pass that replaces them sees every call.
"""

import nnabla as nn
import nnabla.parameter as _parameter
import nnabla.parametric_functions as PF
import numpy as np

from ..core import _registry
from ..core._state import frozen_entries, state_of

#: False: every call goes through PF (for comparisons and for the tests).
ENABLED = True

_Variable = nn.Variable

#: The namespace PF's bodies look names up in, at call time.
_PF_GLOBALS = vars(PF)


def _nnabla_own(function):
    """``function`` if NNabla's ``nnabla/parameter.py`` defines it (not replaced), else None."""
    code = getattr(function, "__code__", None)
    return function if code is not None and code.co_filename == _parameter.__file__ else None


_GET_OR_CREATE = _nnabla_own(_PF_GLOBALS.get("get_parameter_or_create"))


def _pf_calls_nnabla_own():
    """Whether PF's bodies call NNabla's own ``get_parameter_or_create`` and our observers."""
    return (
        _GET_OR_CREATE is not None
        and _PF_GLOBALS.get("get_parameter_or_create") is _GET_OR_CREATE
        and _registry.observers_installed()
    )


def _function(name):
    """``F.<name>`` as PF's body finds it now."""
    return getattr(_PF_GLOBALS["F"], name, None)


def _weight_and_bias(kwargs):
    """PF's requests of the layers with ``W`` and an optional ``b``, or None with an ``apply_*``."""
    if kwargs["apply_w"] is not None or kwargs["apply_b"] is not None:
        return None
    as_need_grad = not kwargs["fix_parameters"]
    return ("W", True, as_need_grad), (("b", True, as_need_grad) if kwargs["with_bias"] else None)


def _affine(kwargs):
    requests = _weight_and_bias(kwargs)
    return requests and ("affine", requests, (kwargs["base_axis"],))


def _convolution(kwargs):
    requests = _weight_and_bias(kwargs)
    args = ("base_axis", "pad", "stride", "dilation", "group", "channel_last")
    return requests and ("convolution", requests, tuple(kwargs[arg] for arg in args))


def _deconvolution(kwargs):
    requests = _weight_and_bias(kwargs)
    args = ("base_axis", "pad", "stride", "dilation", "group", "channel_last", "output_padding")
    return requests and ("deconvolution", requests, tuple(kwargs[arg] for arg in args))


def _batch_normalization(kwargs):
    as_need_grad = not kwargs["fix_parameters"]
    requests = (
        None if kwargs["no_bias"] else ("beta", True, as_need_grad),
        None if kwargs["no_scale"] else ("gamma", True, as_need_grad),
        ("mean", False, False),
        ("var", False, False),
    )
    args = ("axes", "decay_rate", "eps", "batch_stat", "output_stat")
    return "batch_normalization", requests, tuple(kwargs[arg] for arg in args)


def _embed(kwargs):
    if kwargs["apply_w"] is not None:
        return None
    return "embed", (("W", True, not kwargs["fix_parameters"]),), ()


#: PF's function -> ``family(kwargs)``: ``(name of the NNabla function in F, requests,
#: arguments)`` of what PF's body builds, read off its source: ``requests`` are its
#: ``get_parameter_or_create`` calls as ``(name, need_grad, as_need_grad)`` in its
#: order (None where it passes None: no bias), the function is called as
#: ``function(x, *variables, *arguments)``. None: PF's call does more than that
#: (``apply_w``).
FAMILIES = {
    PF.affine: _affine,
    PF.convolution: _convolution,
    PF.deconvolution: _deconvolution,
    PF.batch_normalization: _batch_normalization,
    PF.embed: _embed,
}


def kwargs_snapshot(layer, inference):
    """The values of the layer's PF arguments: a plan holds while they stay the same objects,
    and those that can change in place (lists, dicts, arrays) keep their contents."""
    values = tuple(layer._pf_kwargs.values())
    if inference:
        values += tuple(layer._inference_kwargs.values())
    return values


_IN_PLACE = (list, dict, set, bytearray, np.ndarray)


def _copies_of_mutables(values):
    """``(index, shallow copy)`` of the values that can change in place."""
    return tuple((index, value.copy()) for index, value in enumerate(values)
                 if isinstance(value, _IN_PLACE))


def _unchanged(value, copy):
    try:
        if isinstance(value, np.ndarray):
            return value.shape == copy.shape and value.dtype == copy.dtype and bool(
                np.array_equal(value, copy))
        return bool(value == copy)
    except Exception:  # contents without a plain equality: not provably the same
        return False


def build(layer, x, inference):
    """PF's graph for ``layer(x)`` built from the plan of the mode, or None (go through PF)."""
    plan = layer._fast_plans[inference]
    return None if plan is None else plan.build(layer, x, inference)


def remember(layer, x, kwargs, inference, scope, pf_scope):
    """Records the plan of the call through PF that just built ``layer(x)``."""
    plan = Plan.record(layer, x, kwargs, kwargs_snapshot(layer, inference), scope, pf_scope)
    plans = layer._fast_plans
    if type(plans) is not list:
        plans = [None, None]  # set without Module.__setattr__: not the user's attribute
        object.__setattr__(layer, "_fast_plans", plans)
    plans[inference] = plan


class Plan:
    """What a call that went through PF built, and the conditions under which it holds."""

    __slots__ = ("shape", "values", "copies", "scope", "pf_name", "pf_scope", "entries",
                 "function_name", "function", "args")

    def __deepcopy__(self, memo):
        return None  # a copy has its own weights: it records its own plan

    @classmethod
    def record(cls, layer, x, kwargs, values, scope, pf_scope):
        """The plan of the call that just built ``layer(x)`` with ``kwargs``; None if none."""
        built = FAMILIES[layer.pf_function](kwargs)
        if built is None or type(x) is not _Variable or not _pf_calls_nnabla_own():
            return None
        plan = cls()
        plan.function_name, requests, plan.args = built
        plan.function = _function(plan.function_name)
        state = state_of(layer)
        entries = []
        for request in requests:
            if request is None:
                entries.append(None)
                continue
            name, need_grad, as_need_grad = request
            param = pf_scope.get(name)
            key = state.relative_key(pf_scope, name)
            if not isinstance(param, _Variable) or key is None:
                return None
            # The entry's id, not the entry: a plan keeps no parameter alive.
            entries.append((name, id(param), param.shape, need_grad, as_need_grad, key))
        plan.entries = tuple(entries)
        plan.shape, plan.values, plan.copies = x.shape, values, _copies_of_mutables(values)
        plan.scope, plan.pf_name, plan.pf_scope = scope, layer.pf_function.__scope_name__, pf_scope
        return plan

    def build(self, layer, x, inference):
        """PF's graph for ``layer(x)`` built directly, or None where PF's call could differ."""
        if type(x) is not _Variable or x.shape != self.shape:
            return None
        values = kwargs_snapshot(layer, inference)
        try:
            if values != self.values:
                return None
        except (ValueError, TypeError):  # an argument replaced by an array: not the same
            return None
        for index, copy in self.copies:
            if not _unchanged(values[index], copy):
                return None
        # PF's body looks these up at each call: replaced (a profiler, a quantization
        # pass), the PF call would differ.
        if _function(self.function_name) is not self.function or not _pf_calls_nnabla_own():
            return None
        state = state_of(layer)
        # PF's get_parameter would be observed (_calls.observe): it changes nothing
        # only for keys the module owns already, in a layer that is no name=""
        # layer (whose PF calls its parent checks for sharing) and no temporary
        # module (whose caller owns its entries too).
        if (
            not state.local
            or state.call_keys is not None
            or (state.parent is None and state.built_in_call)
        ):
            return None
        scope = state.scope
        if scope is not self.scope or scope.get(self.pf_name) is not self.pf_scope:
            return None
        pf_scope, claims, frozen = self.pf_scope, state.claims, state.frozen
        no_grad = _parameter.current_no_grad
        variables = []
        for entry in self.entries:
            if entry is None:
                variables.append(None)
                continue
            name, param_id, shape, need_grad, as_need_grad, key = entry
            param = pf_scope.get(name)
            if id(param) != param_id or not isinstance(param, _Variable) or param.shape != shape:
                return None
            if not _unchanged_by_pf(param, need_grad, key, claims, frozen):
                return None
            variable = param.get_unlinked_variable(need_grad=False if no_grad else as_need_grad)
            variable.name = name
            variables.append(variable)
        return self.function(x, *variables, *self.args)


def _unchanged_by_pf(param, need_grad, key, claims, frozen):
    """Whether ``get_parameter_or_create(..., need_grad)`` leaves entry and claims as they are.

    It sets the entry's flag to ``need_grad`` where they differ (``set_parameter``,
    observed). The observer clears the flag of a frozen entry (of a frozen
    module, or one a frozen module owns) again and records the flag asked for
    in the module's claims: a frozen entry asked for ``need_grad=True`` keeps
    ``False``, and nothing changes where the claim says True already.
    """
    if param.need_grad:
        return need_grad and not frozen and id(param) not in frozen_entries and key in claims
    if not need_grad:
        return key in claims
    return (frozen or id(param) in frozen_entries) and claims.get(key) is True
