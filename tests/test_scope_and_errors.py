"""Contexts (docs/gpu.md), bad input, and the scope after failures (docs/concepts.md)."""

import re

import nnabla as nn
import nnabla.parameter as parameter
import numpy as np
import pytest
from equivalence import assert_equivalent, run
from models import ResUnit, res_unit_pf
from nnabla.ext_utils import get_extension_context

import nnabla_modules as nm
from nnabla_modules.core import _registry


class Boom(Exception):
    pass


class Failing(nm.Module):
    """Fails at a chosen depth of a 3-deep tree."""

    def __init__(self, depth, exc=Boom):
        self.depth, self.exc = depth, exc
        self.fc = nm.Affine(2, 2)
        self.inner = Failing(depth - 1, exc) if depth > 0 else None

    def __call__(self, x):
        h = self.fc(x)
        if self.inner is None:
            raise self.exc("at the bottom")
        return self.inner(h)


def _assert_clean(scope_before):
    assert parameter.current_scope is scope_before
    assert _registry.running.active == []
    assert _registry.running.thread is None
    assert parameter.current_no_grad is False


@pytest.mark.parametrize("depth", [0, 1, 2])
@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt])
def test_scope_is_restored_after_a_failure_at_any_depth(depth, exc):
    model = Failing(depth, exc, name="f")
    with nn.parameter_scope("user"):
        before = parameter.current_scope
        with pytest.raises(exc):
            model(nn.Variable((1, 2)))
        _assert_clean(before)
    _assert_clean(parameter.root_scope)


def test_input_size_errors_name_the_module():
    model = ResUnit(8, 8, name="net")
    with pytest.raises(ValueError, match=r"Conv2d 'net/conv0': the input \(1, 3, 4, 4\) has 3 "
                                         r"channels.*constructed for 8"):
        model(nn.Variable((1, 3, 4, 4)))
    _assert_clean(parameter.root_scope)
    with pytest.raises(ValueError, match=r"Affine 'fc': the input \(2, 5\) has 5 features"):
        nm.Affine(4, 2, name="fc")(nn.Variable((2, 5)))
    with pytest.raises(ValueError, match=r"BatchNorm2d 'bn': the input \(2, 3\) has 2 dim"):
        nm.BatchNorm2d(3, name="bn")(nn.Variable((2, 3)))
    with pytest.raises(ValueError, match=r"Conv2d 'c': kernel|Conv2d: kernel"):
        nm.Conv2d(3, 3, (3, 3, 3), name="c")


def test_unknown_call_argument_names_the_module():
    with pytest.raises(TypeError, match="Affine 'fc': affine takes no argument bogus"):
        nm.Affine(2, 2, name="fc")(nn.Variable((1, 2)), bogus=1)


def test_pf_errors_are_reported_with_the_module():
    with pytest.raises(RuntimeError, match="Conv2d .c.: value error"):
        nm.Conv2d(2, 2, 5, name="c")(nn.Variable((1, 2, 3, 3)))  # kernel larger than input


def test_bad_constructor_arguments_show_the_signature():
    with pytest.raises(TypeError, match=r"Conv2d\(inmaps=None, outmaps, kernel"):
        nm.Conv2d(3)


CONTEXTS = {
    "float": lambda: get_extension_context("cpu", type_config="float"),
    "half": lambda: get_extension_context("cpu", type_config="half"),
}


@pytest.mark.parametrize("context", sorted(CONTEXTS))
def test_modules_run_under_the_active_context(context):
    nn.set_default_context(CONTEXTS[context]())

    def pf_code(x):
        with nn.parameter_scope("res_unit"):
            return res_unit_pf(x, 4, 8)

    expected = run(pf_code, [(2, 4, 3, 3)])
    got = run(lambda x: ResUnit(4, 8)(x), [(2, 4, 3, 3)])
    assert_equivalent(expected, got)
    assert np.isfinite(got["outputs"][0]).all()
    y = ResUnit(4, 8, name="check")(nn.Variable((1, 4, 3, 3)))
    y.forward()
    # The module ran in the context's precision: NNabla's output array is float16 in half.
    assert y.data.dtype == {"float": np.float32, "half": np.float16}[context]


def test_a_bare_assert_in_pf_says_which_check_failed():
    """PF checks some arguments with a bare ``assert``: the error shows the check."""
    bn = nm.BatchNorm2d(3, output_stat=True, name="b")
    with pytest.raises(ValueError, match=r"BatchNorm2d 'b': the check `assert batch_stat or "
                                         r"\(not output_stat\)` failed in "):
        bn(nn.Variable((2, 3, 4, 4)), test=True)


def test_a_numpy_input_is_named_with_the_fix():
    """NNabla's own message names a generator; the module says what it got and what to do."""
    array = np.ones((2, 4), np.float32)
    fix = r"pass nn\.Variable\.from_numpy_array\(array\)"
    with pytest.raises(TypeError, match=rf"Linear 'fc': got a numpy\.ndarray .* as inp; .*{fix}"):
        nm.Linear(4, 3, name="fc")(array)
    cell = nm.LSTMCell(4, 3, name="cell")
    with pytest.raises(TypeError, match=r"LSTMCell 'cell': got a numpy\.ndarray .*\(2, 3\) as h;"):
        cell(nn.Variable((2, 4)), np.zeros((2, 3), np.float32), nn.Variable((2, 3)))

    class Relu(nm.Module):
        def __call__(self, x):
            return nn.functions.relu(x)

    with pytest.raises(TypeError, match=rf"Relu 'relu': got a numpy\.ndarray .* as x; .*{fix}"):
        Relu()(x=array)
    with pytest.raises(TypeError, match=r"Relu 'act': .* as argument 0;"):
        Relu(name="act")(array)
    y = nm.Linear(4, 3, name="fc")(nn.Variable.from_numpy_array(array))  # the fix works
    y.forward()
    assert y.d.shape == (2, 3)
    _assert_clean(parameter.root_scope)


@pytest.mark.parametrize("value", [[[1.0, 2.0, 3.0, 4.0]], 3.0, 2], ids=["list", "float", "int"])
def test_a_python_value_as_a_layers_input_is_a_type_error_naming_the_layer(value):
    fix = r"pass nn\.Variable\.from_numpy_array\(numpy\.asarray\(value\)\)"
    kind = type(value).__name__
    with pytest.raises(TypeError, match=rf"Linear 'fc': got a {kind} as inp; .*{fix}"):
        nm.Linear(4, 3, name="fc")(value)
    with pytest.raises(TypeError, match=rf"Conv2d 'conv': got a {kind} as inp;"):
        nm.Conv2d(1, 2, 3, name="conv")(value)
    cell = nm.LSTMCell(4, 3, name="cell")
    with pytest.raises(TypeError, match=rf"LSTMCell 'cell': got a {kind} as h;"):
        cell(nn.Variable((2, 4)), value, nn.Variable((2, 3)))


@pytest.mark.parametrize("method", ["cuda", "to", "half", "cpu", "float", "double"])
def test_pytorch_device_and_precision_methods_point_to_the_context(method):
    fc = nm.Linear(4, 3, name="fc")
    with pytest.raises(AttributeError, match=rf"Linear 'fc' has no method {method}\(\): .*"
                                             r"nn\.set_default_context\(get_extension_context"
                                             r".*docs/gpu\.md"):  # fmt: skip
        getattr(fc, method)
    assert not hasattr(fc, method)
    with pytest.raises(AttributeError, match=r"^'Linear' object has no attribute 'cdua'$"):
        fc.cdua  # noqa: B018


def test_an_attribute_named_like_a_pytorch_method_is_the_users():
    class Split(nm.Module):
        def __init__(self):
            self.half = nm.Linear(4, 2)

        def __call__(self, x):
            return self.half(x)

    assert Split(name="split")(nn.Variable((1, 4))).shape == (1, 2)


def test_a_propertys_own_attribute_error_is_not_replaced():
    class Net(nm.Module):
        @property
        def width(self):
            return self.fc.out_features  # no such attribute: its error is the one to see

    with pytest.raises(AttributeError, match="'Net' object has no attribute 'fc'"):
        Net(name="net").width  # noqa: B018


@pytest.mark.parametrize("build, hint", [
    (lambda: nm.Conv2d(3, 16, 3, padding=1), "padding= is pad="),
    (lambda: nm.Linear(4, 2, bias=False), "bias= is with_bias="),
    (lambda: nm.Conv2d(in_channels=3, out_channels=8, kernel_size=3),
     "in_channels= is inmaps=; out_channels= is outmaps=; kernel_size= is kernel="),
    (lambda: nm.BatchNorm2d(4, momentum=0.1), "momentum= is decay_rate= (1 - momentum)"),
])
def test_pytorchs_argument_names_get_the_names_the_layer_takes(build, hint):
    with pytest.raises(TypeError, match=re.escape(f"(PyTorch's names: {hint})")):
        build()
