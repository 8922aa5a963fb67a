"""One adapter turns a parametric function into a module class.

A layer class *declares* which ``PF`` function it mirrors and which constructor
arguments are input sizes; the adapter derives everything else from PF's own
signature: the constructor (PF's keyword arguments, names and defaults), the
call (PF's inputs in PF's order), the docstring (PF's argument docs) and the
eager creation of parameters (PF itself, on example inputs of the declared
sizes).
"""

import inspect
import re
from collections import OrderedDict

import nnabla as nn
import nnabla.parameter as _parameter

from .. import _registry
from ..module import Module, ModuleMeta, describe, with_name_parameter

REQUIRED = inspect.Parameter.empty


class _LayerMeta(ModuleMeta):
    """Derives a layer class's signature and docstring from PF's on first use.

    Reading 43 PF signatures and docstrings at import would cost tens of
    milliseconds; ``import nnabla_modules`` pays only for what is used.
    """

    @property
    def __signature__(cls):
        if cls.pf_function is None:  # a family base: nothing to derive
            return ModuleMeta.__signature__.fget(cls)
        return with_name_parameter(_spec(cls)["signature"])

    @property
    def _pf_arg_names(cls):
        return _spec(cls)["pf_arg_names"] if cls.pf_function is not None else ()

    @property
    def __doc__(cls):
        if cls.pf_function is None:
            return cls.__dict__.get("__doc__")
        return _spec(cls)["doc"]


def _spec(cls):
    spec = cls.__dict__.get("_lazy_spec")
    if spec is None:
        pf_params = _pf_parameters(cls.pf_function, cls.inputs + cls.keyword_inputs)
        spec = {"pf_arg_names": tuple(pf_params)}
        spec["signature"] = _constructor_signature(cls, pf_params)
        type.__setattr__(cls, "_lazy_spec", spec)
        spec["doc"] = _docstring(cls, spec["signature"])
    return spec


class Layer(Module, metaclass=_LayerMeta):
    """Base of the modules that mirror one ``nnabla.parametric_functions`` function.

    Subclasses declare:

    * ``pf_function``: the PF function;
    * ``inputs``: the names of PF's input Variables, in PF's order;
    * ``keyword_inputs``: PF's optional Variables taken by the call as
      keywords only (attention masks); they are no constructor arguments;
    * ``own_args``: ``(name, default)`` of constructor arguments PF does not
      take (input sizes, mostly), placed first;
    * ``positional``: the constructor's positional order when it must differ
      from PF's (the seed's classes); the other arguments become keyword-only;
    * ``inference_args``: PF arguments that inference sets (``eval()`` or
      ``test=True``), e.g. ``{"batch_stat": False}``;

    and implement ``_example_inputs`` (Variables of the declared sizes, for
    creating the parameters before the first call) and ``_check_inputs``.
    """

    _checks_shared_pf_calls = False  # one PF call per call: nothing to share by accident
    _children_may_grow = False  # a layer's children (a wrapped layer) are set in __init__
    pf_function = None
    inputs = ("inp",)
    keyword_inputs = ()
    own_args = ()
    positional = None
    inference_args = {}
    _cached_pf_scope = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "pf_function" in cls.__dict__:  # a plain function would bind as a method
            cls.pf_function = staticmethod(cls.__dict__["pf_function"])
            cls._pf_body = staticmethod(cls.pf_function.__parametric_function_api_base__)

    def __init__(self, *args, **kwargs):
        cls = type(self)
        signature = _spec(cls)["signature"]
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{cls.__name__}{signature}: {error}") from None
        bound.apply_defaults()
        self.config = OrderedDict(bound.arguments)
        self._configure(self.config)
        self._pf_kwargs = {name: self.config[name] for name in cls._pf_arg_names}

    def _configure(self, config):
        """Validates and normalizes the constructor arguments in place."""

    def __call__(self, *inputs, test=False, **overrides):
        # Runs on every call of every layer: the common case is kept to a few lookups.
        if len(inputs) != 1 and not 0 < len(inputs) <= len(self.inputs):
            raise TypeError(
                f"{describe(self)}: takes the inputs ({', '.join(self.inputs)}), "
                f"got {len(inputs)} positional arguments"
            )
        self._check_inputs(*inputs)
        if overrides or test or not self.training:
            kwargs = self._call_kwargs(test, overrides)
        else:
            kwargs = self._pf_kwargs
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
            return self._pf_body(inputs[0], **kwargs)
        except (ValueError, RuntimeError) as error:
            raise type(error)(f"{describe(self)}: {error}") from error
        finally:
            _parameter.current_scope = previous

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
        if (test or not self.training) and self.inference_args:
            kwargs = {**kwargs, **self.inference_args}
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

    def _create_parameters(self):
        inputs = self._example_inputs()
        if inputs is None:
            return
        with nn.auto_forward(False):
            self.pf_function(*inputs[:1], **{**self._pf_kwargs, **_named(self, inputs)})

    def _example_inputs(self):
        """Variables of the declared sizes, or None when the sizes are unknown."""
        return None

    def _check_inputs(self, *inputs):
        """Raises a ValueError naming the module when an input disagrees with the sizes."""

    def _size_error(self, what, expected, got):
        return ValueError(
            f"{describe(self)}: {what} is {got}, but the module was constructed for "
            f"{expected}. Pass inputs of that size, or construct the layer for this one."
        )

    def extra_repr(self):
        shown = []
        for name, param in _spec(type(self))["signature"].parameters.items():
            value = self.config[name]
            if isinstance(value, Module):
                continue  # shown as a child module
            if param.default is REQUIRED:
                shown.append(repr(value))
            elif not _same(value, param.default):
                shown.append(f"{name}={value!r}")
        return ", ".join(shown)


def _named(layer, inputs):
    return dict(zip(layer.inputs[1:], inputs[1:]))


def _same(value, default):
    try:
        return bool(value == default) and type(value) is type(default)
    except Exception:  # arrays and other values without a plain truth value
        return value is default


def _pf_parameters(pf_function, inputs):
    signature = inspect.signature(pf_function)
    return OrderedDict(
        (name, param)
        for name, param in signature.parameters.items()
        if name not in inputs and name != "name"
    )


def _constructor_signature(cls, pf_params):
    params = OrderedDict(
        (name, inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default))
        for name, default in cls.own_args
    )
    for name, param in pf_params.items():
        params.setdefault(name, param.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD))
    order = cls.positional or tuple(params)
    positional = [params[name] for name in order]
    keyword_only = [
        param.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for name, param in params.items()
        if name not in order
    ]
    return inspect.Signature(positional + keyword_only)


_ARG_LINE = re.compile(r"^(\s+)(\w+)\s*(\(.*?\))?\s*:")


def _arg_docs(docstring):
    """``{argument: its lines}`` from the ``Args:`` section of a docstring."""
    docs, current, indent, in_args = {}, None, None, False
    for line in inspect.cleandoc(docstring or "").split("\n"):
        if line.strip() == "Args:":
            in_args = True
            continue
        if not in_args:
            continue
        if line and not line.startswith(" "):
            break  # the next section
        match = _ARG_LINE.match(line)
        if match and (indent is None or len(match.group(1)) == indent):
            indent = len(match.group(1))
            current = match.group(2)
            docs[current] = [line.strip()]
        elif current is not None and line.strip():
            docs[current].append(line.strip())
    return docs


def _own_arg_docs(cls):
    """Arguments documented by the class or a base (Conv2d inherits ``inmaps``)."""
    docs = {}
    for base in reversed(cls.__mro__):
        docs.update(_arg_docs(base.__dict__.get("__doc__")))
    return docs


def _docstring(cls, signature):
    own = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    summary, _, rest = own.partition("\n\n")
    own_docs = _own_arg_docs(cls)
    pf_docs = _arg_docs(cls.pf_function.__doc__)
    pf_name = cls.pf_function.__name__
    lines = [
        summary or f"Module form of ``PF.{pf_name}``.",
        "",
        f"Mirrors :func:`nnabla.parametric_functions.{pf_name}`: the same parameter names, "
        "shapes and initializers, created by PF itself under this module's prefix. "
        f"Call it with {', '.join(cls.inputs)}{_keywords_note(cls)} as PF takes them; "
        "keyword arguments of the call override the constructor's for that call.",
        "",
        "Args:",
    ]
    for name in signature.parameters:
        text = own_docs.get(name) or pf_docs.get(name) or [f"{name}: See ``PF.{pf_name}``."]
        lines.append("    " + text[0])
        lines.extend("        " + more for more in text[1:])
    lines.append("")
    lines.append(_strip_args(rest))
    return "\n".join(lines).rstrip() + "\n"


def _keywords_note(cls):
    if not cls.keyword_inputs:
        return ""
    return f" (and {', '.join(cls.keyword_inputs)} as keywords)"


def _strip_args(text):
    if "Args:" not in text:
        return text
    before, section = text.split("Args:", 1)
    after = re.split(r"\n(?=\S)", section, maxsplit=1)
    return before + (after[1] if len(after) > 1 else "")
