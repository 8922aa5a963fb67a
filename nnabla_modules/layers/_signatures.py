"""A layer class's constructor signature and docstring, derived from its PF function's.

Derived on a class's first use (``spec``), not at import: reading 43 PF
signatures and docstrings would cost tens of milliseconds.
"""

import inspect
import re
from collections import OrderedDict
from typing import NamedTuple, Tuple

from . import _checks

REQUIRED = inspect.Parameter.empty


class Shapes(NamedTuple):
    """A layer family's Shape section: its inputs' shapes, its outputs', how they relate.

    Each shape is a Python tuple of sizes: a name (a constructor argument,
    or a size first named here) or ``*name`` for any number of axes. ``where``
    holds Python assignments and conditions between the names; a name of
    several axes stands for each of them. ``tests/test_docs.py`` evaluates
    them against the layers' real outputs.
    """

    inputs: Tuple[Tuple[str, str], ...]  # (input, shape)
    outputs: Tuple[Tuple[str, str], ...]  # (output, shape)
    where: Tuple[str, ...] = ()
    note: str = ""


#: The layers whose output has the input's shape (normalizations, activations).
SAME_SHAPE = Shapes(inputs=(("inp", "(*dims,)"),), outputs=(("output", "(*dims,)"),))


def _shape_section(shapes):
    if shapes is None:
        return []
    lines = ["Shape:"]
    lines += [f"    - Input ``{name}``: ``{shape}``" for name, shape in shapes.inputs]
    lines += [f"    - Output ``{name}``: ``{shape}``" for name, shape in shapes.outputs]
    if shapes.where:
        lines.append("    - where " + "; ".join(f"``{rule}``" for rule in shapes.where))
    if shapes.note:
        lines += ["", "    " + shapes.note]
    return lines + [""]


def spec(cls):
    spec = cls.__dict__.get("_lazy_spec")
    if spec is None:
        pf_params = _pf_parameters(cls.pf_function, cls.inputs + cls.keyword_inputs)
        spec = {"pf_arg_names": tuple(pf_params)}
        signature = _constructor_signature(cls, pf_params)
        spec["signature"] = signature
        spec["public_signature"] = _with_name(signature)
        spec["rules"] = _argument_rules(cls, signature)
        type.__setattr__(cls, "_lazy_spec", spec)
        spec["doc"] = _docstring(cls, signature, spec["public_signature"])
    return spec


def _argument_rules(cls, signature):
    sizes, per_axis = cls.input_size_args(), cls.per_axis_args()
    rules = {}
    for name, param in signature.parameters.items():
        rule = _checks.rule_for(
            cls.pf_function.__name__, name, param.default, name in sizes, name in per_axis
        )
        if rule is not None:
            rules[name] = rule
    return rules


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
    # Unvalidated: an input size left out (default None) may come before PF's
    # required arguments, as in ``Conv2d(None, 64, 3)`` or ``Conv2d(outmaps=64, kernel=3)``.
    return inspect.Signature(positional + keyword_only, __validate_parameters__=False)


def python_signatures(signature):
    """``signature`` as Python can write it: itself, or two where it cannot.

    An input size that may be left out comes before required arguments
    (``Conv2d(None, 64, 3)``, ``Conv2d(outmaps=64, kernel=3)``): no one
    signature of Python says both. Then the first gives every argument
    positionally (the size required), the second takes them all by keyword.
    """
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    required = [i for i, p in enumerate(positional) if p.default is REQUIRED]
    early = {p.name for p in positional[: max(required, default=0)] if p.default is not REQUIRED}
    if not early:
        return [signature]
    return [
        inspect.Signature([p.replace(default=REQUIRED) if p.name in early else p for p in params]),
        inspect.Signature([p.replace(kind=p.KEYWORD_ONLY) for p in params]),
    ]


def _with_name(signature):
    """The signature users see: the constructor's plus the module's keyword-only ``name=``."""
    name = inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, default=None)
    params = list(signature.parameters.values()) + [name]
    return inspect.Signature(params, __validate_parameters__=False)


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


def _docstring(cls, signature, public_signature):
    custom = cls.__dict__.get("_user_function")  # nm.layer's: the undecorated function
    own = inspect.cleandoc(cls.__dict__.get("__doc__") or (custom and custom.__doc__) or "")
    summary, _, rest = own.partition("\n\n")
    own_docs = _own_arg_docs(cls)
    pf_docs = _arg_docs(cls.pf_function.__doc__)
    if custom is None:
        pf_name = cls.pf_function.__name__
        short, reference, creator = (
            f"PF.{pf_name}",
            f":func:`nnabla.parametric_functions.{pf_name}`",
            "PF itself",
        )
    else:
        short = f"{custom.__module__}.{custom.__qualname__}"
        reference, creator = f"``{short}``", "the function itself"
    # Where Python has no one signature for the constructor, the docstring
    # starts with its two (the API reference and help() show them).
    overloads = python_signatures(public_signature)
    lines = [f"{cls.__name__}{overload}" for overload in overloads if len(overloads) > 1]
    lines += [""] * bool(lines) + [
        summary or f"Module form of ``{short}``.",
        "",
        f"Mirrors {reference}: the same parameter names, "
        f"shapes and initializers, created by {creator} under this module's prefix. "
        f"Call it with {', '.join(cls.inputs)}{_keywords_note(cls)} as the function takes them; "
        "keyword arguments of the call override the constructor's for that call.",
        "",
        "Args:",
    ]
    for name in signature.parameters:
        text = own_docs.get(name) or pf_docs.get(name) or [f"{name}: See ``{short}``."]
        lines.append("    " + text[0])
        lines.extend("        " + more for more in text[1:])
    lines.append("")
    lines += _shape_section(cls.shapes)
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
