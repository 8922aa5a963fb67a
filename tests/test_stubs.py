"""The layer classes' type stubs agree with the classes, and a type checker uses them.

The constructors are derived from PF's signatures at run time; the stubs
(``nnabla_modules/layers/*.pyi``, written by ``scripts/layer_stubs.py``) are
what editors and type checkers see of them (docs/layers.md, "Type checking").
Each stub is parsed with ``ast`` and compared with ``inspect.signature`` of its
class and with its ``call_signature()``: a stub that drifts fails here.
"""

import ast
import importlib
import inspect
import pathlib
import re
import subprocess
import sys
import types

import numpy as np
import pytest

import nnabla_modules as nm
from nnabla_modules.layers import _signatures
from nnabla_modules.layers._adapter import Layer

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS = ROOT / "nnabla_modules" / "layers"
TYPING = pathlib.Path(__file__).resolve().parent / "typing"
KINDS = inspect.Parameter


def _files_with_layer_classes():
    """The files of nnabla_modules/layers that define classes made from a PF function."""
    names = set()
    for name in nm.layers.__all__:
        value = getattr(nm.layers, name)
        if isinstance(value, type) and issubclass(value, Layer) and value.pf_function is not None:
            names.add(value.__module__)
    return sorted(names)


STUBBED = _files_with_layer_classes()


def _stub(module_name):
    path = LAYERS / (module_name.rsplit(".", 1)[1] + ".pyi")
    assert path.exists(), f"{path} is missing: run python scripts/layer_stubs.py"
    return ast.parse(path.read_text())


def _layer_classes(module):
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Layer)
        and value.__module__ == module.__name__
    ]


def _stub_classes(tree):
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _methods(class_node, name):
    return [
        node for node in class_node.body if isinstance(node, ast.FunctionDef) and node.name == name
    ]


def _default(node):
    """The stub's default: its literal value, or Ellipsis for ``...``."""
    return ast.literal_eval(node)


def _stub_parameters(function):
    """``[(name, kind, default, annotation text)]`` of a stub function, ``self`` left out."""
    args = function.args
    positional = args.posonlyargs + args.args
    defaults = [KINDS.empty] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = []
    for index, (arg, default) in enumerate(zip(positional, defaults)):
        kind = (
            KINDS.POSITIONAL_ONLY if index < len(args.posonlyargs) else KINDS.POSITIONAL_OR_KEYWORD
        )
        params.append((arg, kind, default))
    if args.vararg:
        params.append((args.vararg, KINDS.VAR_POSITIONAL, KINDS.empty))
    params += [
        (arg, KINDS.KEYWORD_ONLY, KINDS.empty if default is None else default)
        for arg, default in zip(args.kwonlyargs, args.kw_defaults)
    ]
    if args.kwarg:
        params.append((args.kwarg, KINDS.VAR_KEYWORD, KINDS.empty))
    return [
        (
            arg.arg,
            kind,
            default if default is KINDS.empty else _default(default),
            ast.unparse(arg.annotation) if arg.annotation else None,
        )
        for arg, kind, default in params[1:]
    ]


def _is_literal(value):
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError):
        return False


def _assert_same(stub_params, signature, where):
    """Names, kinds and defaults agree; ``...`` stands for a default that has no literal."""
    expected = list(signature.parameters.values())
    assert [p[0] for p in stub_params] == [p.name for p in expected], where
    for (name, kind, default, _), param in zip(stub_params, expected):
        assert kind is param.kind, f"{where}: {name} is {kind}, the class's is {param.kind}"
        if default is Ellipsis and param.default is not Ellipsis:
            assert param.default is not KINDS.empty and not _is_literal(param.default), (
                f"{where}: {name}'s default is ..., the class's {param.default!r}"
            )
        else:
            assert default == param.default and type(default) is type(param.default), (
                f"{where}: {name}={default!r}, the class's {param.default!r}"
            )


def _without_defaults(signature, names):
    return inspect.Signature(
        [
            p.replace(default=KINDS.empty) if p.name in names else p
            for p in signature.parameters.values()
        ]
    )


def _by_keyword(signature):
    return inspect.Signature(
        [p.replace(kind=KINDS.KEYWORD_ONLY) for p in signature.parameters.values()]
    )


def _defaults_before_required(signature):
    params = [p for p in signature.parameters.values() if p.kind is KINDS.POSITIONAL_OR_KEYWORD]
    required = [i for i, p in enumerate(params) if p.default is KINDS.empty]
    return {p.name for p in params[: max(required, default=0)] if p.default is not KINDS.empty}


def _expected_annotation(cls, name):
    if name == "name":
        return "str | None"
    rule = _signatures.spec(cls)["rules"].get(name)
    return "Any" if rule is None else rule.annotation


def _cases():
    for module_name in STUBBED:
        module = importlib.import_module(module_name)
        for cls in _layer_classes(module):
            yield pytest.param(module_name, cls, id=cls.__name__)


def test_every_file_with_layer_classes_has_a_stub_and_only_those():
    stubs = sorted(f"nnabla_modules.layers.{path.stem}" for path in LAYERS.glob("*.pyi"))
    assert stubs == STUBBED
    assert len([c for m in STUBBED for c in _layer_classes(importlib.import_module(m))]) >= 43


@pytest.mark.parametrize("module_name", STUBBED)
def test_a_stub_declares_every_public_name_of_its_file(module_name):
    """A stub hides its .py from type checkers: whatever the file defines must be in it."""
    module = importlib.import_module(module_name)
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", module_name) == module_name
    }
    stub = _stub(module_name)
    declared = set(_stub_classes(stub)) | {
        node.target.id for node in stub.body if isinstance(node, ast.AnnAssign)
    }
    assert defined <= declared, sorted(defined - declared)
    assert {cls.__name__ for cls in _layer_classes(module)} == set(_stub_classes(stub))


@pytest.mark.parametrize("module_name, cls", _cases())
def test_the_stub_of_a_class_matches_its_signatures(module_name, cls):
    node = _stub_classes(_stub(module_name))[cls.__name__]
    where = f"{module_name}.{cls.__name__}"
    assert [ast.unparse(base) for base in node.bases] == [b.__name__ for b in cls.__bases__]
    inits, calls = _methods(node, "__init__"), _methods(node, "__call__")
    if cls.pf_function is None:  # a family's base: Layer's constructor and call
        assert not inits and not calls, where
        return
    signature = inspect.signature(cls)
    if len(inits) == 1:
        _assert_same(_stub_parameters(inits[0]), signature, f"{where}.__init__")
    else:
        # An input size that may be left out comes before required arguments:
        # positionally it is required, by keyword (the second overload) it is not.
        positional, by_keyword = inits
        stripped = _defaults_before_required(signature)
        assert stripped, f"{where}: overloads without a reason"
        _assert_same(
            _stub_parameters(positional),
            _without_defaults(signature, stripped),
            f"{where}.__init__ (positional)",
        )
        _assert_same(
            _stub_parameters(by_keyword), _by_keyword(signature), f"{where}.__init__ (keywords)"
        )
    for init in inits:
        for name, _, _, annotation in _stub_parameters(init):
            assert annotation == _expected_annotation(cls, name), f"{where}.__init__({name})"
    (call,) = calls
    _assert_same(_stub_parameters(call), cls.call_signature(), f"{where}.__call__")


def test_a_call_accepts_what_its_signature_names_and_refuses_the_rest():
    """call_signature() is what the call checks: PF's arguments per call, inputs by keyword."""
    import nnabla as nn

    fc = nm.Affine(4, 3, name="fc")
    x = nn.Variable((2, 4))
    signature = nm.Affine.call_signature()
    assert list(signature.parameters)[:2] == ["inp", "test"]
    assert "with_bias" in signature.parameters and "n_inmaps" not in signature.parameters
    assert fc(x, base_axis=1, test=True).shape == (2, 3)
    with pytest.raises(TypeError, match="takes no argument n_inmaps"):
        fc(x, n_inmaps=4)
    rnn = nm.RNN(3, 5, name="rnn")
    assert list(nm.RNN.call_signature().parameters)[:3] == ["x", "h", "test"]
    y, _ = rnn(nn.Variable((6, 2, 3)), h=nn.Variable((1, 1, 2, 5)))
    assert y.shape == (6, 2, 5)


def test_the_call_signature_of_a_user_layer_and_of_a_family_base():
    import nnabla as nn
    import nnabla.parametric_functions as PF

    @PF.parametric_function_api("noisy")
    def noisy(x, n_out, test=False, fix_parameters=False):
        """An affine layer that PF code calls with test=."""
        return PF.affine(x, n_out, fix_parameters=fix_parameters) * (0.5 if test else 1.0)

    Noisy = nm.layer(noisy)
    signature = Noisy.call_signature()
    # PF's flag ``test`` is the call's: one parameter, set by test= or eval().
    assert list(signature.parameters) == ["x", "test", "n_out", "fix_parameters"]
    layer = Noisy(3, name="noisy")
    x = nn.Variable.from_numpy_array(np.ones((1, 2), np.float32))
    y_train, y_test = layer(x), layer(x, test=True)
    nn.forward_all([y_train, y_test])
    np.testing.assert_array_equal(y_test.d, y_train.d * 0.5)
    assert str(nm.layers.conv.ConvolutionFamily.call_signature()) == (
        "(*inputs, test=False, **overrides)"
    )


def _mypy(*paths):
    pytest.importorskip("mypy")
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
    result = subprocess.run(
        command + [str(path) for path in paths], cwd=ROOT, capture_output=True, text=True
    )
    return result.returncode, result.stdout + result.stderr


def _run(source, path):
    namespace = {"__name__": "__typing_example__"}
    exec(compile(source, str(path), "exec"), namespace)


def test_mypy_accepts_the_package_the_examples_and_correct_uses_which_run():
    """What ``make lint`` runs: pyproject.toml's files, tests/typing/accepted.py among them."""
    accepted = TYPING / "accepted.py"
    assert '"tests/typing/accepted.py"' in (ROOT / "pyproject.toml").read_text()
    code, output = _mypy()
    assert code == 0, output
    _run(accepted.read_text(), accepted)


_MARK = re.compile(r"  # rejected: ([\w-]+)$")


def test_mypy_rejects_each_wrong_use_which_also_fails_at_run_time():
    rejected = TYPING / "rejected.py"
    lines = rejected.read_text().split("\n")
    expected = {
        number: _MARK.search(line).group(1)
        for number, line in enumerate(lines, 1)
        if _MARK.search(line)
    }
    assert len(expected) >= 10
    code, output = _mypy(rejected)
    found = {}
    for match in re.finditer(r"rejected\.py:(\d+): error: .*\[([\w-]+)\]$", output, re.M):
        found.setdefault(int(match.group(1)), set()).add(match.group(2))
    assert code == 1, output
    assert found == {number: {code} for number, code in expected.items()}, output
    preamble = "\n".join(line for line in lines if not _MARK.search(line))
    for number, line in enumerate(lines, 1):
        if number in expected:
            with pytest.raises((TypeError, ValueError)):
                _run(preamble + "\n" + line, rejected)
