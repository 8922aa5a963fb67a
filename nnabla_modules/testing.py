"""Proving a refactor: the PF code and the module build the same network.

:func:`assert_same_network` builds the old PF function and the new module from
the same seed and compares what a user can observe: the parameter keys (relative
to the module's prefix and to the scope the PF code runs in), their shapes and
``need_grad``, their initial values, the outputs in training and in inference
mode (any nesting of tuples, lists and dicts of Variables, numbers and arrays),
the parameters after a training step's forward pass (batch-norm running
statistics) and the parameter gradients of a backward pass. NNabla's random
generator is seeded identically before each network's forward pass, so random
functions such as ``F.dropout`` draw the same numbers in both. Any difference
fails with one readable report listing all of them, each with both values.

Example:

    >>> import nnabla as nn
    >>> import nnabla.parametric_functions as PF
    >>> import nnabla_modules as nm
    >>> from nnabla_modules.testing import assert_same_network
    >>> def old(x, test=False):
    ...     h = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="conv")
    ...     return PF.batch_normalization(h, batch_stat=not test, name="bn")
    >>> class New(nm.Module):
    ...     def __init__(self, *, name=None):
    ...         self.conv = nm.Conv2d(3, 4, (3, 3), pad=(1, 1))
    ...         self.bn = nm.BatchNorm2d(4)
    ...     def __call__(self, x, test=False):
    ...         return self.bn(self.conv(x), test)
    >>> assert_same_network(old, New(name="refactored"), (2, 3, 8, 8))
"""

import functools
import inspect
import numbers
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import nnabla as nn
import nnabla.random as _nn_random
import numpy as np

from ._util import input_variables, nested_leaves
from .core._tree import has_parameters
from .module import Module

__all__ = ["assert_same_network", "compare_networks", "NetworkComparison"]


class NetworkComparison:
    """Everything :func:`compare_networks` found; empty ``problems`` means the same network.

    Attributes:
        pf_keys (list): The PF code's parameter keys, in creation order.
        module_keys (list): The module's parameter keys, in the tree's order.
        problems (list): ``(section, lines)`` pairs, one per kind of difference;
            a line names the key or output (``output[1]['aux']``) and gives
            both values where they differ most.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.pf_keys: List[str] = []
        self.module_keys: List[str] = []
        self.problems: List[Tuple[str, List[str]]] = []

    def add(self, section: str, lines: Iterable[str]) -> None:
        if lines:
            self.problems.append((section, list(lines)))

    @property
    def same(self) -> bool:
        return not self.problems

    @property
    def first_difference(self) -> Optional[str]:
        """The report's first difference, ``"section: line"``, or ``None`` for the same network."""
        if self.same:
            return None
        section, lines = self.problems[0]
        return f"{section}: {lines[0]}"

    def __str__(self) -> str:
        if self.same:
            return f"{self.what}: the same network ({len(self.module_keys)} parameter arrays)"
        out = [f"{self.what}: the networks differ"]
        for section, lines in self.problems:
            out.append(f"  {section}:")
            out.extend(f"    {line}" for line in lines)
        return "\n".join(out)

    __repr__ = __str__


def assert_same_network(
    pf_fn: Callable[..., Any], module: Module, *inputs: Any, **options: Any
) -> None:
    """Fails, listing every difference, unless ``module`` builds the network ``pf_fn`` builds.

    Args:
        pf_fn (callable): The old code: takes the inputs, runs ``PF.*`` functions,
            returns a Variable, a number, or tuples, lists and dicts of them
            (the module returns the same structure). It runs in a private
            parameter scope, so its keys are compared relative to the scope it
            runs in, the module's relative to the module's prefix.
        module (Module): The refactored module; its values are restored afterwards.
        *inputs: ``nn.Variable`` or numpy arrays, or shapes (tuples of ints) for
            random normal inputs; both networks get the same Variables.
        **options: See :func:`compare_networks` (``seed``, ``pf_eval_kwargs``,
            ``modes``, ``check_init``, ``check_grads``, ``rtol``, ``atol``, ``kwargs``).

    Raises:
        AssertionError: With the report of :class:`NetworkComparison`.

    Example:

        >>> import nnabla.parametric_functions as PF
        >>> import nnabla_modules as nm
        >>> from nnabla_modules.testing import assert_same_network
        >>> assert_same_network(lambda x: PF.affine(x, 3), nm.Linear(5, 3, name="head"), (4, 5))
    """
    comparison = compare_networks(pf_fn, module, *inputs, **options)
    if not comparison.same:
        raise AssertionError(str(comparison))


def compare_networks(
    pf_fn: Callable[..., Any],
    module: Module,
    *inputs: Any,
    seed: int = 313,
    modes: Sequence[str] = ("train", "eval"),
    pf_eval_kwargs: Optional[Dict[str, Any]] = None,
    check_init: bool = True,
    check_grads: bool = True,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    kwargs: Optional[Dict[str, Any]] = None,
) -> NetworkComparison:
    """Builds both networks and returns a :class:`NetworkComparison` (never raises on a difference).

    Args:
        pf_fn (callable): The old PF code, see :func:`assert_same_network`.
        module (Module): The refactored module.
        *inputs: Variables, numpy arrays or shapes, passed to both.
        seed (int): ``nn.seed(seed)`` runs before each network creates its
            parameters (each by its own first call, in the order that call
            creates them), before each builds its graph and before each
            forward pass, so random functions (``F.dropout``, ``F.randn``, ...)
            draw the same numbers in both. ``nnabla.random.prng`` is restored
            afterwards; the random functions' generator is left seeded.
        modes (tuple): Any of ``"train"`` (``module.train()``, ``pf_fn(*inputs)``)
            and ``"eval"`` (``module.eval()``, ``pf_fn(*inputs, **pf_eval_kwargs)``).
        pf_eval_kwargs (dict): What makes ``pf_fn`` infer. Default:
            ``{"test": True}`` when ``pf_fn`` takes ``test``, ``{"training": False}``
            when it takes ``training``, else ``{}``.
        check_init (bool): Compare initial values. Only done when the module
            had no parameters yet (they are then created after the same seed).
        check_grads (bool): Compare parameter gradients after a backward pass
            from every output Variable with the same random output gradient
            (training mode).
        rtol (float): Relative tolerance of every value comparison.
        atol (float): Absolute tolerance; pass ``rtol=0, atol=0`` for bit equality.
        kwargs (dict): Keyword arguments for both calls (e.g. ``{"test": False}``).

    Returns:
        NetworkComparison: ``str()`` of it is the report.
    """
    kwargs = dict(kwargs or {})
    if pf_eval_kwargs is None:
        pf_eval_kwargs = _default_eval_kwargs(pf_fn)
    _check_arguments(module, modes)
    what = f"{type(module).__name__} {module.prefix!r} vs {_function_name(pf_fn)}"
    report = NetworkComparison(what)
    rng = np.random.RandomState(seed)
    inputs = input_variables(
        inputs, f"compare_networks({what})", lambda shape: rng.randn(*shape).astype(np.float32)
    )
    fresh = not has_parameters(module)
    saved_rng = _nn_random.prng
    saved_modes = [(m, m.training) for m in module.modules()]
    pf_scope: OrderedDict[str, Any] = OrderedDict()
    try:
        pf_params, mod_params = _create_both(pf_fn, module, inputs, kwargs, seed, pf_scope)
        snapshot = _snapshot(mod_params)
        _compare_parameters(report, pf_params, mod_params, fresh and check_init, rtol, atol)
        shared = [k for k in pf_params if k in mod_params and _same_shape(pf_params, mod_params, k)]
        for mode in modes:
            _copy_values(mod_params, pf_params, shared)
            pf_kw = kwargs if mode == "train" else {**kwargs, **pf_eval_kwargs}
            module.train(mode == "train")
            pf_out = _run(functools.partial(_in_scope, pf_scope, pf_fn, inputs, pf_kw), seed)
            mod_out = _run(functools.partial(module, *inputs, **kwargs), seed)
            _compare_outputs(report, mode, pf_out, mod_out, rtol, atol)
            if mode == "train":
                _compare_after(report, pf_params, mod_params, shared, rtol, atol)
                if check_grads:
                    _compare_grads(
                        report, pf_out, mod_out, pf_params, mod_params, shared, seed, rtol, atol
                    )
            _restore(mod_params, snapshot)
    finally:
        _nn_random.prng = saved_rng
        for m, training in saved_modes:
            m.training = training
    return report


def _check_arguments(module, modes):
    if not isinstance(module, Module):
        raise TypeError(f"compare_networks: expected a Module, got {type(module).__name__}")
    unknown = set(modes) - {"train", "eval"}
    if unknown:
        raise ValueError(f"compare_networks: unknown modes {sorted(unknown)}; use train, eval")


def _function_name(fn):
    name = getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", None)
    return name or type(fn).__name__


def _default_eval_kwargs(pf_fn):
    try:
        params = inspect.signature(pf_fn).parameters
    except (TypeError, ValueError):
        return {}
    if "test" in params:
        return {"test": True}
    if "training" in params:
        return {"training": False}
    return {}


def _create_both(pf_fn, module, inputs, kwargs, seed, pf_scope):
    """Creates both sets of parameters from the same seed; returns ``(pf, module)`` dicts.

    Each network creates its parameters in the order its own first call does:
    layers that know their sizes are not created ahead of the call.
    """
    with nn.auto_forward(False):
        nn.seed(seed)
        with nn.parameter_scope("", pf_scope):
            pf_fn(*inputs, **kwargs)
            pf_params = nn.get_parameters(grad_only=False)
        nn.seed(seed)
        module.train()
        module(*inputs, **kwargs)
        mod_params = module.get_parameters(grad_only=False)  # and those no call creates
    return pf_params, mod_params


def _in_scope(scope, fn, inputs, kwargs):
    with nn.parameter_scope("", scope):
        return fn(*inputs, **kwargs)


def _run(call, seed):
    """Builds one network's graph and computes it, NNabla's generator seeded before each step.

    Returns the outputs as ``{path: leaf}`` (``output``, ``output[0]``,
    ``output[1]['aux']``, ...): Variables, numbers, arrays or other objects.
    """
    with nn.auto_forward(False):
        nn.seed(seed)
        leaves = OrderedDict(nested_leaves(call(), "output"))
    computed = [v for v in leaves.values() if isinstance(v, nn.Variable) and v.parent is not None]
    nn.seed(seed)
    if computed:
        nn.forward_all(computed, clear_no_need_grad=False)
    return leaves


def _same_shape(a, b, key):
    return tuple(a[key].shape) == tuple(b[key].shape)


def _compare_parameters(report, pf_params, mod_params, check_init, rtol, atol):
    report.pf_keys, report.module_keys = list(pf_params), list(mod_params)
    report.add("keys only in the PF code", _key_lines(pf_params, mod_params))
    report.add("keys only in the module", _key_lines(mod_params, pf_params))
    both = [k for k in pf_params if k in mod_params]
    report.add(
        "shape mismatches (PF vs module)",
        [
            f"{k}: {tuple(pf_params[k].shape)} vs {tuple(mod_params[k].shape)}"
            for k in both
            if not _same_shape(pf_params, mod_params, k)
        ],
    )
    report.add(
        "need_grad mismatches (PF vs module)",
        [
            f"{k}: {pf_params[k].need_grad} vs {mod_params[k].need_grad}"
            for k in both
            if pf_params[k].need_grad != mod_params[k].need_grad
        ],
    )
    if check_init:
        report.add(
            "initial values differ from the same seed (creation order or initializers differ; "
            "check_init=False ignores this)",
            _value_lines(pf_params, mod_params, both, rtol, atol, lambda v: v.d),
        )


def _key_lines(a, b):
    return [f"{k} {tuple(v.shape)}" for k, v in a.items() if k not in b]


def _value_lines(pf_params, mod_params, keys, rtol, atol, get):
    lines = []
    for key in keys:
        if not _same_shape(pf_params, mod_params, key):
            continue
        line = _difference(get(pf_params[key]), get(mod_params[key]), rtol, atol)
        if line:
            lines.append(f"{key}: {line}")
    return lines


def _difference(expected, actual, rtol, atol):
    """``None`` when close, else the largest absolute difference, where, and both values there."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.shape != actual.shape:
        return f"shape {expected.shape} vs {actual.shape}"
    if np.allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True):
        return None
    expected64, actual64 = expected.astype(np.float64), actual.astype(np.float64)
    close = np.isclose(actual64, expected64, rtol=rtol, atol=atol, equal_nan=True)
    diff = np.where(close, 0.0, np.abs(actual64 - expected64))
    where = np.unravel_index(np.argmax(np.where(np.isnan(diff), np.inf, diff)), diff.shape)
    at = f" at {tuple(int(i) for i in where)}" if diff.ndim else ""
    return (
        f"max |diff| {float(diff[where]):.6g}{at}: "
        f"PF {float(expected64[where]):.6g} vs module {float(actual64[where]):.6g}"
    )


def _leaf_difference(expected, actual, rtol, atol):
    """``None`` when two output leaves agree, else a line saying how they differ."""
    expected, actual = _leaf_value(expected), _leaf_value(actual)
    arrays = isinstance(expected, np.ndarray), isinstance(actual, np.ndarray)
    if all(arrays):
        return _difference(expected, actual, rtol, atol)
    if any(arrays) or type(expected) is not type(actual) or expected != actual:
        return f"PF {expected!r} vs module {actual!r}"
    return None


def _leaf_value(leaf):
    if isinstance(leaf, nn.Variable):
        return np.array(leaf.d)
    if isinstance(leaf, nn.NdArray):
        return np.array(leaf.data)
    if isinstance(leaf, (numbers.Number, np.ndarray, np.generic)):
        return np.asarray(leaf)
    return leaf


def _copy_values(source, target, keys):
    for key in keys:
        target[key].d = source[key].d.copy()


def _snapshot(params):
    return {k: (v.d.copy(), v.g.copy()) for k, v in params.items()}


def _restore(params, snapshot):
    for key, (data, grad) in snapshot.items():
        params[key].d = data
        params[key].g = grad


def _compare_outputs(report, mode, pf_out, mod_out, rtol, atol):
    lines = [f"{path}: only in the PF code's output" for path in pf_out if path not in mod_out]
    lines += [f"{path}: only in the module's output" for path in mod_out if path not in pf_out]
    for path, expected in pf_out.items():
        if path in mod_out:
            line = _leaf_difference(expected, mod_out[path], rtol, atol)
            if line:
                lines.append(f"{path}: {line}")
    report.add(f"outputs in {mode} mode (PF vs module)", lines)


def _compare_after(report, pf_params, mod_params, keys, rtol, atol):
    report.add(
        "parameters after a training forward pass (running statistics)",
        _value_lines(pf_params, mod_params, keys, rtol, atol, lambda v: v.d),
    )


def _compare_grads(report, pf_out, mod_out, pf_params, mod_params, keys, seed, rtol, atol):
    pairs = [(pf_out[path], mod_out.get(path)) for path in pf_out]
    if set(pf_out) != set(mod_out) or not all(_same_variable_shape(p, m) for p, m in pairs):
        return  # already reported as an output difference
    rng = np.random.RandomState(seed + 1)
    for params in (pf_params, mod_params):
        for param in params.values():
            param.grad.zero()
    for p, m in pairs:
        if isinstance(p, nn.Variable) and p.parent is not None and m.parent is not None:
            grad = np.asarray(rng.randn(*p.shape), dtype=np.float32)
            p.backward(grad, clear_buffer=False)
            m.backward(grad, clear_buffer=False)
    report.add(
        "parameter gradients after a backward pass",
        _value_lines(pf_params, mod_params, keys, rtol, atol, lambda v: v.g),
    )


def _same_variable_shape(pf_leaf, mod_leaf):
    """Both Variables of one shape, or neither a Variable."""
    if isinstance(pf_leaf, nn.Variable) and isinstance(mod_leaf, nn.Variable):
        return tuple(pf_leaf.shape) == tuple(mod_leaf.shape)
    return not isinstance(pf_leaf, nn.Variable) and not isinstance(mod_leaf, nn.Variable)
