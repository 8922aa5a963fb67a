"""Writes the type stubs (``nnabla_modules/layers/*.pyi``) of the layer classes.

The layer classes take their constructors from PF's signatures at run time,
which editors and type checkers cannot see: they would show ``(*args,
**kwargs)``. This script writes, for every file of ``nnabla_modules/layers/``
that defines layer classes, a stub with each class's constructor as
``inspect.signature(cls)`` reports it and its call as ``cls.call_signature()``
does, annotated with the types of the argument checks (``_checks.py``,
``_types.py``). A stub hides its ``.py`` from type checkers, so it declares
every class of the file; it holds no docstrings, which editors read from the
``.py``. Run it after changing a layer class::

    python scripts/layer_stubs.py

``tests/test_stubs.py`` fails while a stub disagrees with its classes.
"""

import ast
import importlib
import inspect
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nnabla_modules.layers import _signatures  # noqa: E402
from nnabla_modules.layers._adapter import Layer  # noqa: E402

#: The files of ``nnabla_modules/layers`` with layer classes made from PF functions.
STUBBED = (
    "activation",
    "attention",
    "conv",
    "embedding",
    "linear",
    "lowrank",
    "normalization",
    "quantized",
    "recurrent",
    "reparam",
)
HEADER = (
    '"""Type stub written by scripts/layer_stubs.py from the classes\' signatures: do not edit."""'
)
TYPE_NAMES = ("Bool", "Initializer", "Initializers", "Int", "Ints", "Number")


def layer_classes(module):
    """The layer classes defined in ``module``, in the order of definition."""
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Layer)
        and value.__module__ == module.__name__
    ]


def literal(value):
    """The source text of ``value`` when it is a literal, else ``...``."""
    text = repr(value)
    try:
        same = ast.literal_eval(text) == value and type(ast.literal_eval(text)) is type(value)
    except (ValueError, SyntaxError):
        same = False
    return text if same else "..."


def annotation(cls, name):
    """The type of constructor argument ``name``: its check's, or Any when nothing checks it."""
    if name == "name":
        return "str | None"
    rule = _signatures.spec(cls)["rules"].get(name)
    return rule.annotation if rule is not None else "Any"


def parameter_text(param, annotate):
    text = f"{param.name}: {annotate(param.name)}"
    if param.default is not inspect.Parameter.empty:
        text += f" = {literal(param.default)}"
    return text


def function_text(name, params, annotate, returns, overload=False):
    """``def name(self, ...) -> returns: ...`` with ``/`` and ``*`` where the kinds change."""
    parts, kind = ["self"], inspect.Parameter.POSITIONAL_ONLY
    for param in params:
        if kind is param.POSITIONAL_ONLY and param.kind is not param.POSITIONAL_ONLY:
            if any(p.kind is p.POSITIONAL_ONLY for p in params):
                parts.append("/")
        if param.kind is param.KEYWORD_ONLY and kind is not param.KEYWORD_ONLY:
            if kind is not param.VAR_POSITIONAL:
                parts.append("*")
        if param.kind is param.VAR_POSITIONAL:
            parts.append(f"*{param.name}: {annotate(param.name)}")
        elif param.kind is param.VAR_KEYWORD:
            parts.append(f"**{param.name}: {annotate(param.name)}")
        else:
            parts.append(parameter_text(param, annotate))
        kind = param.kind
    decorator = "    @overload\n" if overload else ""
    return f"{decorator}    def {name}({', '.join(parts)}) -> {returns}: ...\n"


def init_text(cls):
    """``__init__``; two overloads where an input size left out may precede required arguments.

    ``Conv2d(None, 64, 3)`` gives the size positionally, ``Conv2d(outmaps=64,
    kernel=3)`` leaves it out: Python's syntax has no single signature for both.
    """
    overloads = _signatures.python_signatures(inspect.signature(cls))
    annotate = lambda name: annotation(cls, name)  # noqa: E731
    return "".join(
        function_text(
            "__init__", list(sig.parameters.values()), annotate, "None", len(overloads) > 1
        )
        for sig in overloads
    )


def call_text(cls):
    signature = cls.call_signature()
    inputs = set(cls.inputs + cls.keyword_inputs)

    def annotate(name):
        param = signature.parameters[name]
        if param.kind is param.VAR_POSITIONAL or param.kind is param.VAR_KEYWORD:
            return "Any"
        if name == "test" and "test" not in cls._pf_arg_names:
            return "bool"
        if name in inputs:
            optional = param.default is None
            return "nn.Variable | None" if optional else "nn.Variable"
        return annotation(cls, name)

    return function_text("__call__", list(signature.parameters.values()), annotate, "Any")


def class_attributes(cls, classes):
    """``name: ClassVar[...]`` of the public class attributes a layer file adds to Layer's."""
    lines = []
    for name, value in vars(cls).items():
        if name.startswith("_") or callable(value) or name in vars(Layer):
            continue
        if any(name in vars(base) for base in cls.__mro__[1:]):
            continue  # declared by a base
        types = sorted(
            {type(vars(c)[name]).__name__ for c in classes if name in vars(c)},
            key=lambda t: t == "NoneType",
        )
        union = " | ".join("None" if t == "NoneType" else t for t in types)
        lines.append(f"    {name}: ClassVar[{union}]\n")
    return lines


def class_text(cls, classes):
    bases = ", ".join(base.__name__ for base in cls.__bases__)
    body = class_attributes(cls, classes)
    if cls.pf_function is not None:
        body += [init_text(cls), call_text(cls)]
    if not any(body):
        body = ["    ...\n"]
    return f"class {cls.__name__}({bases}):\n" + "".join(body)


def base_imports(module, classes):
    """``from .x import Base`` for the bases defined in other files."""
    by_module = {}
    for cls in classes:
        for base in cls.__bases__:
            if base.__module__ != module.__name__:
                by_module.setdefault(base.__module__, set()).add(base.__name__)
    lines = []
    for name, bases in sorted(by_module.items()):
        relative = "." + name.rsplit(".", 1)[1]
        lines.append(f"from {relative} import {', '.join(sorted(bases))}\n")
    return lines


def stub_text(module):
    classes = layer_classes(module)
    body = "\n\n".join(class_text(cls, classes) for cls in classes)
    used = [name for name in TYPE_NAMES if re.search(rf"\b{name}\b", body)]
    typing = ["Any"] + (["ClassVar"] if "ClassVar[" in body else [])
    typing += ["Sequence"] if "Sequence[" in body else []
    typing += ["overload"] if "@overload" in body else []
    imports = [f"from typing import {', '.join(typing)}\n", "\n", "import nnabla as nn\n"]
    if "np." in body:
        imports.append("import numpy as np\n")
    imports.append("\n")
    imports += base_imports(module, classes)
    if used:
        imports.append(f"from ._types import {', '.join(used)}\n")
    return HEADER + "\n\n" + "".join(imports) + "\n\n" + body


def stub_path(name):
    return ROOT / "nnabla_modules" / "layers" / f"{name}.pyi"


def main():
    paths = []
    for name in STUBBED:
        module = importlib.import_module(f"nnabla_modules.layers.{name}")
        path = stub_path(name)
        path.write_text(stub_text(module))
        paths.append(str(path))
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", *paths], check=True)
    subprocess.run([sys.executable, "-m", "ruff", "check", "-q", "--fix", *paths], check=True)
    print(f"wrote {len(paths)} stubs")


if __name__ == "__main__":
    main()
