"""Every public parametric function of the installed NNabla has its module class.

Discovered at run time, so a new NNabla release cannot silently open a gap:
a function without a class fails here, naming it.
"""

import inspect
from pathlib import Path

import nnabla.parametric_functions as PF
import pytest

import nnabla_modules as nm


def public_parametric_functions():
    """``{name: function}`` of PF's public functions made by ``parametric_function_api``."""
    return {
        name: fn
        for name, fn in vars(PF).items()
        if hasattr(fn, "__parametric_function_api_base__") and not name.startswith("_")
    }


def layer_classes():
    return [
        cls
        for cls in vars(nm).values()
        if isinstance(cls, type) and issubclass(cls, nm.Layer) and cls.pf_function is not None
    ]


def class_for(name):
    """The class named after the function: underscores removed, case ignored."""
    wanted = name.replace("_", "").lower()
    matches = [cls for cls in layer_classes() if cls.__name__.lower() == wanted]
    return matches[0] if matches else None


FUNCTIONS = public_parametric_functions()


def test_discovery_finds_nnabla_1_39s_functions():
    assert len(FUNCTIONS) >= 43
    assert {"affine", "lstm_cell", "transformer_decode", "spectral_norm"} <= set(FUNCTIONS)
    assert not {"_spectral_norm_v1", "_weight_normalization_v1"} & set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_has_a_class(name):
    cls = class_for(name)
    assert cls is not None, f"PF.{name} has no module class in nnabla_modules"
    assert cls.pf_function is FUNCTIONS[name]
    assert f"nnabla.parametric_functions.{name}" in cls.__doc__


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_constructor_takes_pfs_arguments_with_pfs_defaults(name):
    """Every PF argument but the input Variables and ``name``: same name, same default."""
    cls = class_for(name)
    if cls is None:
        pytest.skip("no class: reported by test_function_has_a_class")
    pf_params = inspect.signature(FUNCTIONS[name]).parameters
    params = inspect.signature(cls).parameters
    variables = set(cls.inputs) | set(cls.keyword_inputs)
    assert params["name"].kind is inspect.Parameter.KEYWORD_ONLY  # the module's own name=
    for arg, pf_param in pf_params.items():
        if arg == "name":
            continue
        if arg in variables:
            assert arg not in params, f"{cls.__name__}: {arg} is a call input"
            continue
        assert arg in params, f"{cls.__name__} lacks PF's {arg}"
        assert params[arg].default == pf_param.default, f"{cls.__name__}.{arg}"


def test_class_names_follow_the_function_names():
    """No two functions map to one class, and each class mirrors one function."""
    classes = [class_for(name) for name in FUNCTIONS]
    assert len({id(c) for c in classes if c is not None}) == len(FUNCTIONS)


@pytest.mark.parametrize("cls", layer_classes(), ids=lambda cls: cls.__name__)
def test_own_arguments_are_documented(cls):
    """The constructor's own arguments (input sizes mostly) are no PF arguments to refer to."""
    for arg, _ in cls.own_args:
        assert f"    {arg} (" in cls.__doc__, f"{cls.__name__}: document {arg} in the class"


def test_docs_list_every_class_beside_its_function():
    text = (Path(__file__).parent.parent / "docs" / "layers.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    for cls in layer_classes():
        row = [r for r in rows if f"`{cls.__name__}`" in r.split("|")[1]]
        assert row, f"docs/layers.md: no row for {cls.__name__}"
        assert f"`PF.{cls.pf_function.__name__}`" in row[0]
