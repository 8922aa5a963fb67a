"""One adapter turns a parametric function into a module class.

A layer class *declares* which ``PF`` function it mirrors and which constructor
arguments are input sizes; the adapter derives everything else from PF's own
signature: the constructor (PF's keyword arguments, names and defaults), the
call (PF's inputs in PF's order), the docstring (PF's argument docs) and the
eager creation of parameters (PF itself, on example inputs of the declared
sizes).
"""

import copy
import inspect
from collections import OrderedDict
from typing import Any, ClassVar, Dict, List, Optional, Tuple

import nnabla as nn
import nnabla.initializer as I
import nnabla.parameter as _parameter
import nnabla.random as _random
import numpy as np

from ..core import _registry
from ..module import Module, ModuleMeta, describe
from . import _checks, _fast
from ._errors import PF_ERRORS, ErrorsNamed, check_inputs, constructor_error, raise_named
from ._signatures import REQUIRED, Shapes, spec


class LayerMeta(ModuleMeta):
    """Derives a layer class's signature and docstring from PF's on first use.

    Reading 43 PF signatures and docstrings at import would cost tens of
    milliseconds; ``import nnabla_modules`` pays only for what is used.
    """

    @property
    def __signature__(cls):
        if cls.pf_function is None:  # a family base: nothing to derive
            return ModuleMeta.__signature__.fget(cls)
        return spec(cls)["public_signature"]

    @property
    def _pf_arg_names(cls):
        return spec(cls)["pf_arg_names"] if cls.pf_function is not None else ()

    @property
    def __doc__(cls):
        if cls.pf_function is None:
            return cls.__dict__.get("__doc__")
        return spec(cls)["doc"]


class Layer(Module, metaclass=LayerMeta):
    """Base of the modules that mirror one parametric function (PF's or the user's).

    Subclasses declare:

    * ``pf_function``: the parametric function (made by ``parametric_function_api``);
    * ``inputs``: the names of its input Variables, in its order;
    * ``keyword_inputs``: optional Variables taken by the call as keywords
      only (attention masks); they are no constructor arguments;
    * ``own_args``: ``(name, default)`` of constructor arguments PF does not
      take (input sizes, mostly, default None), placed first;
    * ``input_sizes``: which ``own_args`` are sizes read from an input (all of
      them unless said otherwise): checked as sizes, and None (or not given)
      makes the layer create its parameters at its first call;
    * ``positional``: the constructor's positional order when it must differ
      from PF's (NNabla's experimental classes); the other arguments become keyword-only;
    * ``inference_args``: PF arguments that inference sets (``eval()`` or
      ``test=True``), e.g. ``{"batch_stat": False}``; a boolean one given
      explicitly to the constructor is pinned: inference leaves it alone;

    and implement ``_example_inputs`` (Variables of the declared sizes, for
    creating the parameters before the first call; None while a size is
    unknown) and ``_check_inputs``. :func:`nnabla_modules.layer` makes such a
    class from a user's own parametric function.
    """

    _checks_shared_pf_calls = False  # one PF call per call: nothing to share by accident
    _children_may_grow = False  # a layer's children (a wrapped layer) are set in __init__
    pf_function: ClassVar[Any] = None
    inputs: ClassVar[Tuple[str, ...]] = ("inp",)
    keyword_inputs: ClassVar[Tuple[str, ...]] = ()
    own_args: ClassVar[Tuple[Tuple[str, Any], ...]] = ()
    input_sizes: ClassVar[Optional[Tuple[str, ...]]] = None  # None: every own_arg
    positional: ClassVar[Optional[Tuple[str, ...]]] = None
    inference_args: ClassVar[Dict[str, Any]] = {}
    shapes: ClassVar[Optional[Shapes]] = None  # the inputs' and outputs', for the docstring
    _cached_pf_scope = None
    _fast_family = False  # PF's function has a fast path (see _fast.py)
    _fast_plans: Any = (None, None)  # training, inference: what the last call through PF built
    _pf_body: ClassVar[Any]  # PF's function below its decorator (__init_subclass__)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own_call = "_pf_body" in cls.__dict__ or "_call_kwargs" in cls.__dict__
        if "pf_function" in cls.__dict__:  # a plain function would bind as a method
            cls.pf_function = staticmethod(cls.__dict__["pf_function"])
            cls._pf_body = staticmethod(cls.pf_function.__parametric_function_api_base__)
            cls._fast_family = cls.pf_function in _fast.FAMILIES
        if own_call:
            cls._fast_family = False  # a call of its own: PF's path, always

    @classmethod
    def input_size_args(cls) -> Tuple[str, ...]:
        """The constructor arguments that are sizes read from an input (``("inmaps",)``)."""
        if cls.input_sizes is not None:
            return tuple(cls.input_sizes)
        return tuple(name for name, _ in cls.own_args)

    @classmethod
    def per_axis_args(cls) -> Tuple[str, ...]:
        """The arguments that take one value per axis and no int (any number of axes)."""
        return ()

    @classmethod
    def call_signature(cls) -> inspect.Signature:
        """The signature of a call of this class's modules, as the call checks it.

        PF's inputs (the first positional only) with PF's defaults, ``test=``,
        the keyword inputs, and PF's other arguments as keywords that override
        the constructor's value for one call (their default, ``...``, stands
        for that value). A class whose ``__call__`` forwards its arguments (a
        reparameterization wrapping a layer) keeps ``__call__``'s own.
        """
        # Without annotations, as inspect.signature(cls) reports the constructor.
        call = [
            p.replace(annotation=p.empty)
            for p in inspect.signature(cls.__call__).parameters.values()
        ][1:]
        if cls.pf_function is None:  # a family's base: nothing to name
            return inspect.Signature(call)
        pf_params = inspect.signature(cls.pf_function).parameters
        inputs_expanded = cls.__call__ is Layer.__call__
        forwards = not inputs_expanded and any(p.kind is p.VAR_POSITIONAL for p in call)
        params: List[inspect.Parameter] = []
        for param in call:
            if param.kind is param.VAR_POSITIONAL and inputs_expanded:
                params.append(param.replace(name=cls.inputs[0], kind=param.POSITIONAL_ONLY))
                params.extend(
                    pf_params[name].replace(kind=param.POSITIONAL_OR_KEYWORD)
                    for name in cls.inputs[1:]
                )
            elif param.kind is param.VAR_KEYWORD and not forwards:
                taken = {p.name for p in params}
                params.extend(
                    pf_params[name].replace(kind=param.KEYWORD_ONLY)
                    for name in cls.inputs + cls.keyword_inputs
                    if name not in taken
                )
                params.extend(
                    inspect.Parameter(name, param.KEYWORD_ONLY, default=...)
                    for name in cls._pf_arg_names
                    if name not in taken  # a PF argument ``test``: the call's flag sets it
                )
            else:
                params.append(param)
        return inspect.Signature(params)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        derived = spec(cls)
        signature = derived["signature"]
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(constructor_error(cls, signature, error, kwargs)) from None
        given = set(bound.arguments)
        bound.apply_defaults()
        self.config = OrderedDict(bound.arguments)
        self._given = frozenset(given)  # the arguments given, not defaulted
        _checks.check_arguments(self.config, derived["rules"], describe(self))
        self._configure(self.config)
        self._pf_kwargs = {name: self.config[name] for name in cls._pf_arg_names}
        # A mode flag given to the constructor holds in inference, as PF code that
        # passed it on every call did; the defaults follow the mode.
        self._inference_kwargs = {
            arg: value
            for arg, value in cls.inference_args.items()
            if not (arg in given and isinstance(value, bool))
        }
        self._generator_bound = _initializers_on_the_global_generator(self._pf_kwargs)

    def _configure(self, config):
        """Validates and normalizes the constructor arguments in place."""

    def __call__(self, *inputs: Any, test: bool = False, **overrides: Any) -> Any:
        # Runs on every call of every layer: the common case is kept to a few lookups.
        fast = None  # the mode of the fast path's plan (see _fast.py), if this call has one
        if self._fast_family and not overrides and len(inputs) == 1 and _fast.ENABLED:
            fast = bool(test or not self.training) and bool(self._inference_kwargs)
            try:
                built = _fast.build(self, inputs[0], fast)
            except PF_ERRORS as error:
                raise_named(self, error, zip(self.inputs, inputs))
            if built is not None:
                return built
        if len(inputs) != 1 and not 0 < len(inputs) <= len(self.inputs):
            raise TypeError(
                f"{describe(self)}: takes the inputs ({', '.join(self.inputs)}), "
                f"got {len(inputs)} positional arguments"
            )
        check_inputs(self, inputs)
        self._check_inputs(*inputs)
        if overrides or test or not self.training:
            kwargs = self._call_kwargs(test, overrides)
        else:
            kwargs = self._pf_kwargs
        if self._generator_bound:
            kwargs = self._on_the_current_generator(kwargs)
        if len(inputs) > 1:
            kwargs = {**kwargs, **dict(zip(self.inputs[1:], inputs[1:]))}
        # PF's wrapper would enter its scope (``conv``...) by name on every call;
        # the module keeps the scope it resolved and runs PF's own body in it.
        scope = self._module_state.scope  # the module's, entered just before
        cached = self._cached_pf_scope
        if cached is not None and cached[0] is scope and scope.get(cached[2]) is cached[1]:
            pf_scope = cached[1]
        else:
            pf_scope = self._pf_scope(scope)
        previous = _parameter.current_scope
        _parameter.current_scope = pf_scope
        try:
            built = self._pf_body(inputs[0], **kwargs)
        except PF_ERRORS as error:
            raise_named(self, error, zip(self.inputs, inputs))
        finally:
            _parameter.current_scope = previous
        if fast is not None:  # what PF built, to build it directly next time
            _fast.remember(self, inputs[0], kwargs, fast, scope, pf_scope)
        return built

    def _pf_scope(self, scope):
        """The registry dict PF's wrapper enters below ``scope``: ``<prefix>/<PF scope name>``."""
        name = self.pf_function.__scope_name__
        try:
            pf_scope = _registry.child_scope(scope, name)
        except _registry.ScopeClash as clash:
            raise ValueError(f"{describe(self)}: {clash}") from None
        self._cached_pf_scope = (scope, pf_scope, name)
        return pf_scope

    def _call_kwargs(self, test, overrides):
        """PF's keyword arguments for one call: the constructor's, inference's, the call's."""
        kwargs = self._pf_kwargs
        if (test or not self.training) and self._inference_kwargs:
            kwargs = {**kwargs, **self._inference_kwargs}
        if overrides:
            known = type(self)._pf_arg_names + self.inputs + self.keyword_inputs
            unknown = set(overrides) - set(known)
            if unknown:
                raise TypeError(
                    f"{describe(self)}: {self.pf_function.__name__} takes no argument "
                    f"{', '.join(sorted(unknown))}"
                )
            kwargs = {**kwargs, **overrides}
        return kwargs

    def _on_the_current_generator(self, kwargs):
        """``kwargs`` with the initializers made with ``rng=None`` drawing from today's generator.

        ``nn.seed()`` replaces NNabla's generator: an initializer constructed
        before it would keep drawing from the old one, where the PF call,
        written after the call to nn.seed(), draws from the new one.
        """
        current = _random.prng
        replaced = {}
        for arg, path, value in self._generator_bound:
            if value is None:  # rng=nn.random.prng itself
                fresh = current
            elif value.rng is not current:
                fresh = copy.copy(value)
                fresh.rng = current
            else:
                continue
            replaced.setdefault(arg, {})[path] = fresh
        if not replaced:
            return kwargs
        kwargs = dict(kwargs)
        for arg, fresh in replaced.items():
            if None in fresh:
                kwargs[arg] = fresh[None]
            else:
                kwargs[arg] = {**kwargs[arg], **fresh}
        return kwargs

    def _create_parameters(self):
        inputs = self._example_inputs()
        if inputs is None:
            return
        kwargs = self._pf_kwargs
        if self._generator_bound:
            kwargs = self._on_the_current_generator(kwargs)
        with nn.auto_forward(False), self._errors_named():
            self.pf_function(*inputs[:1], **{**kwargs, **_named(self, inputs)})

    def parameter_shapes(self) -> Optional[Dict[str, Tuple[int, ...]]]:
        """``{key: shape}`` of the parameters this layer's own PF call creates, or None.

        Computed by running the PF call on a scratch scope with initializers
        that draw nothing: no registry entry is created and NNabla's random
        generator is left as it was. None while an input size is unknown.
        """
        if self._example_inputs() is None:
            return None
        with _registry.lock:  # NNabla's scope and generator are process-wide
            return self._shapes_on_a_scratch_scope()

    def _shapes_on_a_scratch_scope(self):
        scratch = OrderedDict()
        previous_scope, previous_prng = _parameter.current_scope, _random.prng
        previous_kwargs = self._pf_kwargs
        _random.prng = np.random.RandomState(0)  # PF's rng=None initializers draw from it
        self._pf_kwargs = _drawing_nothing(previous_kwargs)
        generator_bound, self._generator_bound = self._generator_bound, ()
        _parameter.current_scope = scratch
        try:
            type(self)._create_parameters(self)
        finally:
            _parameter.current_scope = previous_scope
            _random.prng = previous_prng
            self._pf_kwargs = previous_kwargs
            self._generator_bound = generator_bound
        return OrderedDict(_leaves(scratch))

    def _errors_named(self):
        return ErrorsNamed(self)

    def _example_inputs(self):
        """Variables of the declared sizes, or None when the sizes are unknown."""
        return None

    def _check_inputs(self, *inputs):
        """Raises a ValueError naming the module when an input disagrees with the sizes."""

    def _size_error(self, what, expected):
        return ValueError(
            f"{describe(self)}: {what}, but the module was constructed for "
            f"{expected}. Pass inputs of that size, or construct the layer for this one."
        )

    def _config_error(self, message):
        return ValueError(f"{describe(self)}: {message}")

    def extra_repr(self) -> str:
        # Sizes and required arguments positionally, as they are usually given,
        # until one is left out; the rest by keyword when not the default.
        shown, positional = [], True
        sizes = type(self).input_size_args()
        params = list(spec(type(self))["signature"].parameters.values())
        # A size left out before a required argument shows as None: Linear(None, 10).
        last_required = max((i for i, p in enumerate(params) if p.default is REQUIRED), default=-1)
        for index, param in enumerate(params):
            name = param.name
            value = self.config[name]
            if isinstance(value, Module):
                positional = False
                continue  # shown as a child module
            default = param.default
            leading = param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and (
                default is REQUIRED or name in sizes
            )
            shown_anyway = index < last_required or not _same(value, default)
            if positional and leading and (default is REQUIRED or shown_anyway):
                shown.append(_short_repr(value))
                continue
            positional = positional and not leading
            if default is REQUIRED or not _same(value, default):
                shown.append(f"{name}={_short_repr(value)}")
                positional = False
        return _wrapped(shown)


def _initializers_on_the_global_generator(kwargs):
    """``(argument, key in a dict argument or None, initializer)`` of the initializers
    that draw from NNabla's global generator (made with ``rng=None``); the
    initializer is None for an ``rng=`` that is the global generator itself."""
    found = []
    for arg, value in kwargs.items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for path, item in items:
            if item is _random.prng:
                found.append((arg, path, None))
            elif isinstance(item, I.BaseInitializer) and getattr(item, "rng", None) is _random.prng:
                found.append((arg, path, item))
    return tuple(found)


_SHAPE_ONLY = I.ConstantInitializer(0)


def _drawing_nothing(kwargs):
    """``kwargs`` with every initializer replaced by a constant, every ``rng`` by a scratch one."""

    def replace(value):
        if isinstance(value, I.BaseInitializer):
            return _SHAPE_ONLY
        if isinstance(value, dict):
            return {key: replace(item) for key, item in value.items()}
        return value

    replaced = {arg: replace(value) for arg, value in kwargs.items()}
    if "rng" in replaced:
        replaced["rng"] = np.random.RandomState(0)
    return replaced


def _leaves(scope, prefix=""):
    for name, value in scope.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{name}/")
        else:
            yield prefix + name, tuple(value.shape)


_REPR_WIDTH = 60


def _short_repr(value):
    """``repr``, with objects that have only the default repr shown by class name."""
    text = repr(value)
    if text.startswith("<") and " at 0x" in text:
        return f"{type(value).__name__}(...)"
    return text


def _wrapped(items):
    """Joins ``items`` by commas, starting a new line before one that would pass the width."""
    lines, line = [], ""
    for item in items:
        candidate = f"{line}, {item}" if line else item
        if line and len(candidate) > _REPR_WIDTH:
            lines.append(line + ",")
            line = "    " + item
        else:
            line = candidate
    return "\n".join(lines + [line]) if line else ""


def _named(layer, inputs):
    return dict(zip(layer.inputs[1:], inputs[1:]))


def _same(value, default):
    try:
        return bool(value == default) and type(value) is type(default)
    except Exception:  # arrays and other values without a plain truth value
        return value is default


