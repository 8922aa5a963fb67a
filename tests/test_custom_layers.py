"""``nm.layer``: a user's own parametric function as a module class, bit for bit.

The function is written as real NNabla code writes them (a spectral-normalized
convolution with PF's decorator and ``get_parameter_or_create`` imported by
name) and checked against itself: keys, values, outputs, gradients, inference,
checkpoints, freezing, cloning.
"""

import inspect

import nnabla as nn
import nnabla.functions as F
import nnabla.initializer as I
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from equivalence import assert_equivalent, run
from nnabla.parameter import get_parameter_or_create
from nnabla.parametric_functions import parametric_function_api

import nnabla_modules as nm


def _spectral_norm(w, itr=1, eps=1e-12, test=False):
    """Power iteration on the flattened weight; the singular vector is a parameter."""
    rows = int(np.prod(w.shape[1:]))
    u0 = get_parameter_or_create("singular-vector", (1, rows), I.NormalInitializer(), False)
    u = u0
    for _ in range(itr):
        v = F.affine(u, F.transpose(F.reshape(w, (w.shape[0], rows)), (1, 0)))
        v = v / (F.sum(v**2, keepdims=True) ** 0.5 + eps)
        u = F.affine(v, F.reshape(w, (w.shape[0], rows)))
        u = u / (F.sum(u**2, keepdims=True) ** 0.5 + eps)
    if not test:
        u = F.identity(u, outputs=[u0.data])  # the iteration's result is the next start
        u.persistent = True
    u.need_grad = False
    sigma = F.sum(F.affine(v, F.reshape(w, (w.shape[0], rows))) * u)
    return w / F.reshape(sigma, (1,) * w.ndim)


@parametric_function_api("sn_conv")
def sn_conv(inp, outmaps, kernel, pad=None, stride=None, itr=1, w_init=None, b_init=None,
            base_axis=1, fix_parameters=False, rng=None, with_bias=True, test=False):
    """Convolution with a spectral-normalized kernel.

    Args:
        inp (~nnabla.Variable): Input.
        outmaps (int): Number of output channels.
        kernel (tuple of int): Kernel size.
        itr (int): Power iterations per call.
        test (bool): Leave the singular vector as it is.
    """
    if w_init is None:
        fan_in = inp.shape[base_axis] * int(np.prod(kernel))
        w_init = I.UniformInitializer(I.calc_uniform_lim_glorot(fan_in, outmaps), rng=rng)
    w = get_parameter_or_create("W", (outmaps, inp.shape[base_axis]) + tuple(kernel), w_init,
                                not fix_parameters)
    b = None
    if with_bias:
        b = get_parameter_or_create("b", (outmaps,), b_init or I.ConstantInitializer(),
                                    not fix_parameters)
    w_sn = _spectral_norm(w, itr=itr, test=test)
    return F.convolution(inp, w_sn, b, base_axis=base_axis, pad=pad, stride=stride)  # fmt: skip


SNConv = nm.layer(sn_conv)
SHAPES = [(2, 3, 6, 6)]


def test_the_class_takes_the_functions_signature_and_docs():
    params = inspect.signature(SNConv).parameters
    assert list(params) == [p for p in inspect.signature(sn_conv).parameters if p != "inp"]
    assert params["name"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["itr"].default == 1 and params["outmaps"].default is inspect.Parameter.empty
    assert SNConv.__name__ == "SnConv" and SNConv.__module__ == __name__
    assert "spectral-normalized kernel" in SNConv.__doc__
    assert "    itr (int): Power iterations per call." in SNConv.__doc__
    assert issubclass(SNConv, nm.Layer)


@pytest.mark.parametrize("name", ["", "conv1"])
def test_equals_the_function_bit_for_bit(name):
    expected = run(lambda x: sn_conv(x, 4, (3, 3), pad=(1, 1), name=name or None), SHAPES)
    got = run(lambda x: SNConv(4, (3, 3), pad=(1, 1), name=name)(x), SHAPES)
    assert_equivalent(expected, got)
    assert got["keys"] == [f"{name}/" * bool(name) + k for k in
                           ("sn_conv/W", "sn_conv/b", "sn_conv/singular-vector")]  # fmt: skip


def test_inference_is_the_functions_test_flag():
    expected = run(lambda x: sn_conv(x, 4, (3, 3), test=True, name="c"), SHAPES)
    assert_equivalent(expected, run(lambda x: SNConv(4, (3, 3), name="c").eval()(x), SHAPES))
    assert_equivalent(expected, run(lambda x: SNConv(4, (3, 3), name="c")(x, test=True), SHAPES))
    pinned = run(lambda x: SNConv(4, (3, 3), test=False, name="c").eval()(x), SHAPES)
    assert_equivalent(run(lambda x: sn_conv(x, 4, (3, 3), name="c"), SHAPES), pinned)


def test_under_a_parent_module():
    class Discriminator(nm.Module):
        def __init__(self):
            self.conv0 = SNConv(8, (3, 3))
            self.conv1 = SNConv(1, (3, 3))

        def __call__(self, x):
            return self.conv1(F.leaky_relu(self.conv0(x), 0.1))

    def pf_code(x):
        with nn.parameter_scope("dis"):
            h = F.leaky_relu(sn_conv(x, 8, (3, 3), name="conv0"), 0.1)
            return sn_conv(h, 1, (3, 3), name="conv1")

    assert_equivalent(run(pf_code, SHAPES), run(lambda x: Discriminator(name="dis")(x), SHAPES))


def test_owns_save_load_freeze(tmp_path):
    x = nn.Variable.from_numpy_array(np.random.RandomState(0).randn(*SHAPES[0]))
    conv = SNConv(4, (3, 3), name="d")
    conv(x)
    keys = ["sn_conv/W", "sn_conv/b", "sn_conv/singular-vector"]
    assert list(conv.get_parameters(grad_only=False)) == keys
    assert list(conv.get_parameters()) == keys[:2]
    conv.save_parameters(tmp_path / "d.h5")
    saved = {k: v.d.copy() for k, v in conv.get_parameters(grad_only=False).items()}

    nn.clear_parameters()
    again = SNConv(4, (3, 3), name="d")
    again.load_parameters(tmp_path / "d.h5")  # before the first call: load, then build
    y = again(x)
    assert list(again.get_parameters(grad_only=False)) == keys
    for key, value in again.get_parameters(grad_only=False).items():
        assert np.array_equal(value.d, saved[key]), key
    again.freeze()
    again(x)  # a new graph after freeze(): the weights stay frozen
    assert again.get_parameters() == {}
    assert not nn.get_parameters(grad_only=False)["d/sn_conv/W"].need_grad
    assert y.shape == (2, 4, 4, 4)


def test_clone_copies_the_values():
    x = nn.Variable.from_numpy_array(np.ones(SHAPES[0]))
    conv = SNConv(4, (3, 3), name="src")
    conv(x)
    twin = conv.clone(name="twin")
    twin(x)
    source = conv.get_parameters(grad_only=False)
    copied = twin.get_parameters(grad_only=False)
    assert list(copied) == list(source)
    assert all(np.array_equal(copied[k].d, source[k].d) and copied[k] is not source[k]
               for k in source)  # fmt: skip


def test_decorator_forms():
    @nm.layer
    @parametric_function_api("scale")
    def scale(x, fix_parameters=False):
        """Scales by a learnt factor (PF's decorator needs a docstring)."""
        return x * get_parameter_or_create("s", (1, 1), I.ConstantInitializer(2.0))

    @nm.layer(inputs=("x", "y"), class_name="Gated")
    @parametric_function_api("gate")
    def gate(x, y, units=3, fix_parameters=False):
        """A gated affine map."""
        return PF.affine(x, units) * F.sigmoid(PF.affine(y, units, name="gate"))

    assert scale.__name__ == "Scale" and issubclass(scale, nm.Layer)
    y = scale(name="s")(nn.Variable.from_numpy_array(np.ones((2, 2))))
    y.forward()
    assert np.array_equal(y.d, np.full((2, 2), 2.0))
    g = gate(units=5, name="g")
    assert gate.__name__ == "Gated"
    assert g(nn.Variable((2, 4)), nn.Variable((2, 3))).shape == (2, 5)
    assert list(g.get_parameters()) == [
        "gate/affine/W", "gate/affine/b", "gate/gate/affine/W", "gate/gate/affine/b",
    ]  # fmt: skip


def test_what_is_not_a_parametric_function_is_refused():
    with pytest.raises(TypeError, match="parametric_function_api"):
        nm.layer(lambda x: x)
    with pytest.raises(TypeError, match="inputs"):
        nm.layer(sn_conv, inputs=("z",))
    with pytest.raises(TypeError, match="SnConv.*outmaps"):
        SNConv()


def test_summary_counts_the_functions_parameters():
    summary = SNConv(4, (3, 3), name="sn").summary(SHAPES[0])
    assert summary.outputs.shape == (2, 4, 4, 4)
    created = nn.get_parameters(grad_only=False)
    assert list(created) == ["sn/sn_conv/W", "sn/sn_conv/b", "sn/sn_conv/singular-vector"]
    assert summary.total_params == sum(v.size for v in created.values())


def test_a_function_of_pf_calls_freezes_saves_and_loads(tmp_path):
    @nm.layer(inputs=("x", "y"))
    @parametric_function_api("cbn")
    def conditional_norm(x, y, n_classes=3, fix_parameters=False, test=False):
        """Conditional instance norm: a scale and bias per class (one-hot ``y``)."""
        h = PF.instance_normalization(x, no_scale=True, no_bias=True)
        gamma = F.reshape(PF.embed(y, n_classes, x.shape[1], name="gamma"), x.shape[:2] + (1, 1))
        beta = F.reshape(PF.embed(y, n_classes, x.shape[1], name="beta"), x.shape[:2] + (1, 1))
        return h * gamma + beta

    x = nn.Variable.from_numpy_array(np.random.RandomState(0).randn(2, 4, 3, 3))
    y = nn.Variable.from_numpy_array(np.array([0, 2]))
    expected = run(lambda: conditional_norm.pf_function(x, y, name="cbn"), [])
    got = run(lambda: conditional_norm(name="cbn")(x, y), [])
    assert_equivalent(expected, got)

    norm = conditional_norm(name="norm")
    norm(x, y)
    keys = ["cbn/gamma/embed/W", "cbn/beta/embed/W"]
    assert list(norm.get_parameters()) == keys
    norm.save_parameters(tmp_path / "cbn.h5")
    saved = norm.state_dict()
    norm.freeze()
    norm(x, y)  # a new graph after freeze()
    assert norm.get_parameters() == {}
    nn.clear_parameters()
    again = conditional_norm(name="norm")
    again.load_parameters(tmp_path / "cbn.h5")
    again(x, y)
    assert list(again.get_parameters()) == keys
    assert all(np.array_equal(again.state_dict()[k], v) for k, v in saved.items())
