"""Every layer class beyond NNabla's experimental classes against the PF call it stands for.

One row per case: how to build the module, the shapes of the float inputs,
the equivalent PF call, and (where inference differs) the PF arguments that
inference means. Each row is checked bit for bit (keys, shapes, same-seed
initial values, outputs, gradients, the registry after the step): with
``name=""`` (drop-in) and under a named root, in training and in inference,
and with the parameters created before the first call.
"""

import ast
import inspect

import nnabla as nn
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from equivalence import assert_equivalent, run
from golden import check

import nnabla_modules as nm


def case(module, shapes, pf, inputs=None, inference=None, lazy=False, inference_backward=True):
    """A table row.

    Args:
        module: ``module(**name)`` builds a fresh module.
        shapes: shapes of the float inputs (random, need_grad).
        pf: ``pf(*args, **kwargs)``: the PF call, taking PF's ``name=`` and the
            ``inference`` arguments as keywords.
        inputs: ``inputs(float_inputs) -> (args, kwargs)`` for both calls:
            integer indices, masks given as keywords. Default: the floats.
        inference: PF's arguments in inference (``eval()``, ``test=True``);
            None where inference computes what training does.
        lazy: the module cannot know its parameters before the first call.
        inference_backward: compare gradients in inference too (NNabla's RNNs
            refuse a backward pass with ``training=False``).
    """
    return {
        "module": module,
        "shapes": shapes,
        "pf": pf,
        "inference": inference,
        "inputs": inputs or (lambda xs: (list(xs), {})),
        "lazy": lazy,
        "inference_backward": inference_backward,
    }


_RNN_INFERENCE = {"inference": {"training": False, "dropout": 0.0}, "inference_backward": False}
_NO_DROPOUT = {"dropout": 0.0}
_BN_INFERENCE = {"batch_stat": False}
# NNabla 1.39's spectral_norm(test=True) backward differs run to run (same graph, same
# inputs): inference compares the forward pass only.
_SN_INFERENCE = {"inference": {"test": True}, "inference_backward": False}


def _with_key_padding_mask(xs):
    mask = np.zeros((2, 4), dtype=np.float32)
    mask[1, 3] = 1  # the second sequence's last key is padding
    return list(xs), {"key_padding_mask": nn.Variable.from_numpy_array(mask)}


def _with_src_masks(xs):
    causal = np.triu(np.full((5, 5), -1e4, dtype=np.float32), k=1)
    return list(xs), {"src_additive_mask": nn.Variable.from_numpy_array(causal)}


def _spectral_conv(x, test=False, **k):
    return PF.convolution(x, 4, (3, 3), apply_w=lambda w: PF.spectral_norm(w, test=test), **k)


def _spectral_affine(x, test=False, **k):
    def apply_w(w):
        return PF.spectral_norm(w, dim=1, itr=2, test=test)

    return PF.affine(x, 5, apply_w=apply_w, **k)


def _spectral_of_weight_norm(x, test=False, **k):
    def apply_w(w):
        return PF.spectral_norm(PF.weight_normalization(w), test=test)

    return PF.convolution(x, 4, (3, 3), apply_w=apply_w, **k)


CASES = {
    # quantized, binarized, pruned
    "BinaryConnectAffine": case(lambda **n: nm.BinaryConnectAffine(6, 5, **n), [(2, 6)],
                                lambda x, **k: PF.binary_connect_affine(x, 5, **k)),
    "BinaryConnectConvolution": case(
        lambda **n: nm.BinaryConnectConvolution(3, 4, (3, 3), pad=(1, 1), **n), [(2, 3, 5, 5)],
        lambda x, **k: PF.binary_connect_convolution(x, 4, (3, 3), pad=(1, 1), **k)),
    "BinaryWeightAffine": case(lambda **n: nm.BinaryWeightAffine(6, 5, **n), [(2, 6)],
                               lambda x, **k: PF.binary_weight_affine(x, 5, **k)),
    "BinaryWeightConvolution": case(
        lambda **n: nm.BinaryWeightConvolution(3, 4, (3, 3), **n), [(2, 3, 5, 5)],
        lambda x, **k: PF.binary_weight_convolution(x, 4, (3, 3), **k)),
    "INQAffine": case(lambda **n: nm.INQAffine(6, 5, **n), [(2, 6)],
                      lambda x, **k: PF.inq_affine(x, 5, **k)),
    "INQConvolution": case(lambda **n: nm.INQConvolution(3, 4, (3, 3), **n), [(2, 3, 5, 5)],
                           lambda x, **k: PF.inq_convolution(x, 4, (3, 3), **k)),
    "FixedPointQuantizedAffine": case(
        lambda **n: nm.FixedPointQuantizedAffine(6, 5, n_w=4, **n), [(2, 6)],
        lambda x, **k: PF.fixed_point_quantized_affine(x, 5, n_w=4, **k)),
    "FixedPointQuantizedConvolution": case(
        lambda **n: nm.FixedPointQuantizedConvolution(3, 4, (3, 3), stride=(2, 2), **n),
        [(2, 3, 5, 5)],
        lambda x, **k: PF.fixed_point_quantized_convolution(x, 4, (3, 3), stride=(2, 2), **k)),
    "Pow2QuantizedAffine": case(lambda **n: nm.Pow2QuantizedAffine(6, 5, **n), [(2, 6)],
                                lambda x, **k: PF.pow2_quantized_affine(x, 5, **k)),
    "Pow2QuantizedConvolution": case(
        lambda **n: nm.Pow2QuantizedConvolution(3, 4, (3, 3), **n), [(2, 3, 5, 5)],
        lambda x, **k: PF.pow2_quantized_convolution(x, 4, (3, 3), **k)),
    "PrunedAffine": case(lambda **n: nm.PrunedAffine(6, 5, rate_w=0.5, **n), [(2, 6)],
                         lambda x, **k: PF.pruned_affine(x, 5, rate_w=0.5, **k)),
    "PrunedConvolution": case(lambda **n: nm.PrunedConvolution(3, 4, (3, 3), **n),
                              [(2, 3, 5, 5)],
                              lambda x, **k: PF.pruned_convolution(x, 4, (3, 3), **k)),
    "MinMaxQuantizedAffine": case(lambda **n: nm.MinMaxQuantizedAffine(6, 5, **n), [(2, 6)],
                                  lambda x, **k: PF.min_max_quantized_affine(x, 5, **k)),
    "MinMaxQuantizedConvolution": case(
        lambda **n: nm.MinMaxQuantizedConvolution(3, 4, (3, 3), **n), [(2, 3, 5, 5)],
        lambda x, **k: PF.min_max_quantized_convolution(x, 4, (3, 3), **k)),
    "MinMaxQuantize": case(lambda **n: nm.MinMaxQuantize(2, **n), [(4, 3)],
                           lambda x, **k: PF.min_max_quantize(x, **k)),
    "MinMaxQuantize-ema": case(
        lambda **n: nm.MinMaxQuantize(3, ema=True, x_min_max=True, **n), [(2, 4, 3)],
        lambda x, **k: PF.min_max_quantize(x, ema=True, x_min_max=True, **k)),
    # low rank
    "SVDAffine": case(lambda **n: nm.SVDAffine(8, 6, 2, **n), [(3, 8)],
                      lambda x, **k: PF.svd_affine(x, 6, 2, **k)),
    "SVDConvolution": case(lambda **n: nm.SVDConvolution(3, 4, (3, 3), 2, **n), [(2, 3, 5, 5)],
                           lambda x, **k: PF.svd_convolution(x, 4, (3, 3), 2, **k)),
    "CPD3Convolution": case(
        lambda **n: nm.CPD3Convolution(3, 4, (3, 3), 2, max_iter=5, **n), [(2, 3, 5, 5)],
        lambda x, **k: PF.cpd3_convolution(x, 4, (3, 3), 2, max_iter=5, **k)),
    # convolutions
    "DepthwiseConvolution": case(
        lambda **n: nm.DepthwiseConvolution(4, (3, 3), pad=(1, 1), multiplier=2, **n),
        [(2, 4, 5, 5)],
        lambda x, **k: PF.depthwise_convolution(x, (3, 3), pad=(1, 1), multiplier=2, **k)),
    "DepthwiseDeconvolution": case(
        lambda **n: nm.DepthwiseDeconvolution(4, (2, 2), stride=(2, 2), divisor=2, **n),
        [(2, 4, 3, 3)],
        lambda x, **k: PF.depthwise_deconvolution(x, (2, 2), stride=(2, 2), divisor=2, **k)),
    "DeformableConvolution": case(
        lambda **n: nm.DeformableConvolution(3, 4, (3, 3), pad=(1, 1), **n),
        [(2, 3, 5, 5), (2, 18, 5, 5)],
        lambda x, offset, **k: PF.deformable_convolution(x, 4, (3, 3), offset, pad=(1, 1), **k)),
    "DeformableConvolution-mask": case(
        lambda **n: nm.DeformableConvolution(3, 4, (3, 3), with_bias=False, **n),
        [(2, 3, 5, 5), (2, 18, 5, 5), (2, 9, 5, 5)],
        lambda x, offset, mask, **k: PF.deformable_convolution(x, 4, (3, 3), offset, mask,
                                                               with_bias=False, **k)),
    # normalizations
    "FusedBatchNormalization": case(
        lambda **n: nm.FusedBatchNormalization(3, 4, **n), [(4, 3, 2, 2), (4, 3, 2, 2)],
        lambda x, z, **k: PF.fused_batch_normalization(x, z, **k), inference=_BN_INFERENCE),
    "FusedBatchNormalization-no-z": case(
        lambda **n: nm.FusedBatchNormalization(3, 2, nonlinearity="relu", **n), [(5, 3)],
        lambda x, **k: PF.fused_batch_normalization(x, nonlinearity="relu", **k),
        inference=_BN_INFERENCE),
    "InstanceNormalization": case(lambda **n: nm.InstanceNormalization(3, 4, **n),
                                  [(2, 3, 4, 4)],
                                  lambda x, **k: PF.instance_normalization(x, **k)),
    "GroupNormalization": case(lambda **n: nm.GroupNormalization(4, 4, 2, **n), [(2, 4, 3, 3)],
                               lambda x, **k: PF.group_normalization(x, 2, **k)),
    "GroupNormalization-channel_last": case(
        lambda **n: nm.GroupNormalization(4, 3, 2, channel_axis=2, **n), [(2, 3, 4)],
        lambda x, **k: PF.group_normalization(x, 2, channel_axis=2, **k)),
    "LayerNormalization": case(lambda **n: nm.LayerNormalization((3, 4), **n), [(2, 3, 4)],
                               lambda x, **k: PF.layer_normalization(x, **k)),
    "LayerNormalization-sequence": case(
        lambda **n: nm.LayerNormalization(4, batch_axis=(0, 1), **n), [(5, 2, 4)],
        lambda x, **k: PF.layer_normalization(x, batch_axis=(0, 1), **k)),
    "LayerNormalization-lazy": case(lambda **n: nm.LayerNormalization(**n), [(2, 3)],
                                    lambda x, **k: PF.layer_normalization(x, **k), lazy=True),
    "MeanSubtraction": case(lambda **n: nm.MeanSubtraction((3, 2), **n), [(4, 3, 2)],
                            lambda x, **k: PF.mean_subtraction(x, **k),
                            inference={"update_running_mean": False}),
    # activations
    "PReLU": case(lambda **n: nm.PReLU(**n), [(2, 3, 4)], lambda x, **k: PF.prelu(x, **k)),
    "PReLU-per-channel": case(lambda **n: nm.PReLU(3, shared=False, **n), [(2, 3, 4)],
                              lambda x, **k: PF.prelu(x, shared=False, **k)),
    # recurrent
    "RNN": case(lambda **n: nm.RNN(3, 5, num_layers=2, **n), [(4, 2, 3), (2, 1, 2, 5)],
                lambda x, h, **k: PF.rnn(x, h, num_layers=2, **k), **_RNN_INFERENCE),
    # Without num_layers=, the number of layers is the state's, as PF reads it
    # (PF's num_layers argument is not read): the parameters wait for the first call.
    "LSTM": case(lambda **n: nm.LSTM(3, 5, bidirectional=True, **n),
                 [(4, 2, 3), (1, 2, 2, 5), (1, 2, 2, 5)],
                 lambda x, h, c, **k: PF.lstm(x, h, c, bidirectional=True, **k),
                 lazy=True, **_RNN_INFERENCE),
    "LSTM-layers-of-the-state": case(lambda **n: nm.LSTM(3, 5, **n),
                                     [(4, 2, 3), (3, 1, 2, 5), (3, 1, 2, 5)],
                                     lambda x, h, c, **k: PF.lstm(x, h, c, **k),
                                     lazy=True, **_RNN_INFERENCE),
    "GRU": case(lambda **n: nm.GRU(3, 5, num_layers=2, **n), [(4, 2, 3), (2, 1, 2, 5)],
                lambda x, h, **k: PF.gru(x, h, num_layers=2, **k), **_RNN_INFERENCE),
    "GRU-layers-of-the-state": case(lambda **n: nm.GRU(bidirectional=True, **n),
                                    [(4, 2, 3), (2, 2, 2, 5)],
                                    lambda x, h, **k: PF.gru(x, h, bidirectional=True, **k),
                                    lazy=True, **_RNN_INFERENCE),
    "RNN-layers-of-the-state": case(lambda **n: nm.RNN(3, 5, nonlinearity="relu", **n),
                                    [(4, 2, 3), (2, 1, 2, 5)],
                                    lambda x, h, **k: PF.rnn(x, h, nonlinearity="relu", **k),
                                    lazy=True, **_RNN_INFERENCE),
    "LSTMCell": case(lambda **n: nm.LSTMCell(3, 5, **n), [(2, 3), (2, 5), (2, 5)],
                     lambda x, h, c, **k: PF.lstm_cell(x, h, c, 5, **k)),
    # attention
    "MultiHeadAttention": case(
        lambda **n: nm.MultiHeadAttention(8, 6, 6, num_heads=2, dropout=0.25, **n),
        [(5, 2, 8), (4, 2, 6), (4, 2, 6)],
        lambda q, key, v, **k: PF.multi_head_attention(q, key, v, num_heads=2,
                                                       **{"dropout": 0.25, **k}),
        inputs=_with_key_padding_mask, inference=_NO_DROPOUT),
    "MultiHeadAttention-attn-bias": case(
        lambda **n: nm.MultiHeadAttention(8, num_heads=4, add_attn_bias=True, out_dim=6, **n),
        [(5, 2, 8), (4, 2, 8), (4, 2, 8)],
        lambda q, key, v, **k: PF.multi_head_attention(q, key, v, num_heads=4,
                                                       add_attn_bias=True, out_dim=6, **k)),
    "TransformerEncode": case(
        lambda **n: nm.TransformerEncode(8, 2, dim_feedforward=16, dropout=0.25, **n),
        [(5, 2, 8)],
        lambda x, **k: PF.transformer_encode(x, 8, 2, dim_feedforward=16,
                                             **{"dropout": 0.25, **k}),
        inputs=_with_src_masks, inference=_NO_DROPOUT),
    "TransformerDecode": case(
        lambda **n: nm.TransformerDecode(8, 2, dim_feedforward=16, **n), [(4, 2, 8), (5, 2, 8)],
        lambda t, m, **k: PF.transformer_decode(t, m, 8, 2, dim_feedforward=16, **k),
        inference=_NO_DROPOUT),
    "Transformer": case(
        lambda **n: nm.Transformer(8, 2, 1, 2, dim_feedforward=16, **n),
        [(5, 2, 8), (4, 2, 8)],
        lambda s, t, **k: PF.transformer(s, t, 8, 2, 1, 2, dim_feedforward=16, **k),
        inference=_NO_DROPOUT),
    # reparameterizations
    "SpectralNorm": case(lambda **n: nm.SpectralNorm(nm.Conv2d(3, 4, 3), **n), [(2, 3, 5, 5)],
                         _spectral_conv, **_SN_INFERENCE),
    "SpectralNorm-affine": case(
        lambda **n: nm.SpectralNorm(nm.Affine(6, 5), dim=1, itr=2, **n), [(2, 6)],
        _spectral_affine, **_SN_INFERENCE),
    "SpectralNorm-of-a-weight": case(lambda **n: nm.SpectralNorm(dim=1, **n), [(4, 5)],
                                     lambda w, **k: PF.spectral_norm(w, dim=1, **k),
                                     **_SN_INFERENCE, lazy=True),
    "WeightNormalization": case(
        lambda **n: nm.WeightNormalization(nm.Affine(6, 5), dim=1, **n), [(2, 6)],
        lambda x, **k: PF.affine(x, 5, apply_w=lambda w: PF.weight_normalization(w, dim=1),
                                 **k)),
    "WeightNormalization-of-a-weight": case(
        lambda **n: nm.WeightNormalization(**n), [(4, 3, 2)],
        lambda w, **k: PF.weight_normalization(w, **k), lazy=True),
    "SpectralNorm-of-WeightNormalization": case(
        lambda **n: nm.SpectralNorm(nm.WeightNormalization(nm.Conv2d(3, 4, 3)), **n),
        [(2, 3, 5, 5)], _spectral_of_weight_norm, **_SN_INFERENCE),
}  # fmt: skip

MODES = [c for c in CASES if CASES[c]["inference"] is not None]


class Net(nm.Module):
    """A root holding the layer as ``layer``: PF code's ``name="layer"`` under scope ``net``."""

    def __init__(self, layer):
        self.layer = layer

    def __call__(self, *args, **kwargs):
        return self.layer(*args, **kwargs)


def _pf(row, **extra):
    def build(*xs):
        args, kwargs = row["inputs"](xs)
        return row["pf"](*args, **kwargs, **extra)

    return build


def _module(row, make, mode=None):
    def build(*xs):
        args, kwargs = row["inputs"](xs)
        module = make()
        if mode == "eval":
            module.eval()
        if mode == "test":
            kwargs = {**kwargs, "test": True}
        return module(*args, **kwargs)

    return build


def _compare(row, pf_build, module_build, backward=True):
    assert_equivalent(
        run(pf_build, row["shapes"], backward=backward),
        run(module_build, row["shapes"], backward=backward),
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_drop_in_equals_pf(name):
    row = CASES[name]
    _compare(row, _pf(row), _module(row, lambda: row["module"](name="")))


@pytest.mark.parametrize("name", sorted(CASES))
def test_under_a_named_root_equals_pf(name):
    row = CASES[name]

    def pf_code(*xs):
        with nn.parameter_scope("net"):
            return _pf(row, name="layer")(*xs)

    _compare(row, pf_code, _module(row, lambda: Net(row["module"](), name="net")))


@pytest.mark.parametrize("mode", ["eval", "test"])
@pytest.mark.parametrize("name", sorted(MODES))
def test_inference_equals_pf_inference(name, mode):
    """``eval()``, or ``test=True`` for one call, computes what PF's inference arguments do."""
    row = CASES[name]
    backward = row["inference_backward"]
    drop_in = _module(row, lambda: row["module"](name=""), mode)
    _compare(row, _pf(row, **row["inference"]), drop_in, backward)

    def pf_code(*xs):
        with nn.parameter_scope("net"):
            return _pf(row, name="layer", **row["inference"])(*xs)

    named = _module(row, lambda: Net(row["module"](), name="net"), mode)
    _compare(row, pf_code, named, backward)


@pytest.mark.parametrize("name", sorted(CASES))
def test_parameters_exist_before_the_first_call(name):
    """get_parameters() before a call: PF's keys, shapes, same-seed values (or none if lazy)."""
    row = CASES[name]
    expected = run(_pf(row), row["shapes"], backward=False)

    def create_then_call(*xs):
        module = row["module"](name="")
        created = module.get_parameters(grad_only=False)
        assert list(created) == ([] if row["lazy"] else expected["keys"])
        args, kwargs = row["inputs"](xs)
        return module(*args, **kwargs)

    assert_equivalent(expected, run(create_then_call, row["shapes"], backward=False))


def _keys_and_shapes(row, **name):
    run(_pf(row, **name), row["shapes"], forward=False)
    return [[key, list(p.shape)] for key, p in nn.get_parameters(grad_only=False).items()]


def test_golden_keys():
    """PF's keys (and so the modules') for every row, pinned: a new NNabla cannot move them."""
    check("layers", {name: _keys_and_shapes(row) for name, row in sorted(CASES.items())})


# --- what the table does not cover ----------------------------------------------


def test_every_new_class_has_a_row():
    seed = {
        nm.Affine,
        nm.Linear,
        nm.Convolution,
        nm.Deconvolution,
        nm.BatchNormalization,
        nm.Embed,
    } | {
        c
        for c in vars(nm).values()
        if isinstance(c, type)
        and issubclass(c, (nm.Convolution, nm.Deconvolution, nm.BatchNormalization))
    }
    layers = {
        c
        for c in vars(nm).values()
        if isinstance(c, type) and issubclass(c, nm.Layer) and c.pf_function is not None
    }
    nn.clear_parameters()
    covered = {type(row["module"]()) for row in CASES.values()}
    covered |= {nm.SyncBatchNormalization}  # tested below: it needs a communicator to run
    assert layers - seed - covered == set()


def test_sync_batch_normalization_without_a_communicator():
    """Construction, names, the signature and the parameters work without a communicator."""
    params = inspect.signature(nm.SyncBatchNormalization).parameters
    assert list(params)[:4] == ["n_features", "n_dims", "comm", "group"]
    assert params["comm"].default is inspect.Parameter.empty  # PF's: required
    pf_params = inspect.signature(PF.sync_batch_normalization).parameters
    for arg in ("group", "axes", "decay_rate", "eps", "batch_stat", "no_scale", "no_bias"):
        assert params[arg].default == pf_params[arg].default

    class Model(nm.Module):
        def __init__(self):
            self.bn = nm.SyncBatchNormalization(3, 4, None, axes=[1], eps=1e-3)

    model = Model(name="model")
    assert model.bn.prefix == "model/bn"
    created = {k: v.d.copy() for k, v in model.get_parameters(grad_only=False).items()}
    assert list(created) == ["bn/bn/beta", "bn/bn/gamma", "bn/bn/mean", "bn/bn/var"]
    # PF.sync_batch_normalization's own parameters: those of PF.batch_normalization
    nn.clear_parameters()
    PF.batch_normalization(nn.Variable((1, 3, 1, 1)), eps=1e-3, name="bn")
    expected = {k: v.d for k, v in nn.get_parameters(grad_only=False).items()}
    assert list(expected) == list(created)
    assert all(np.array_equal(created[k], v) for k, v in expected.items())
    assert model.bn.extra_repr().startswith("3, 4, None")
    with pytest.raises(ValueError, match="SyncBatchNormalization 'model/bn'.*communicator"):
        model.bn(nn.Variable((2, 3, 4, 4)))


def test_masks_are_call_keywords_not_constructor_arguments():
    params = inspect.signature(nm.MultiHeadAttention).parameters
    assert "key_padding_mask" not in params and "additive_mask" not in params
    assert "src_key_padding_mask" not in inspect.signature(nm.Transformer).parameters
    attn = nm.MultiHeadAttention(8, num_heads=2, name="attn")
    x = nn.Variable((3, 2, 8))
    with pytest.raises(TypeError, match="takes the inputs"):
        attn(x, x, x, nn.Variable((3, 3)))
    y, _ = attn(x, x, x, additive_mask=nn.Variable((3, 3)))
    assert y.shape == (3, 2, 8)


def test_inputs_that_disagree_with_the_sizes_name_the_module():
    bad_calls = [
        (nm.LayerNormalization((3, 4), name="ln"), [(2, 4, 3)], "LayerNormalization 'ln'"),
        (nm.MeanSubtraction((3,), name="ms"), [(2, 4)], "MeanSubtraction 'ms'"),
        (nm.PReLU(3, shared=False, name="act"), [(2, 4)], "PReLU 'act'"),
        (nm.GroupNormalization(4, 4, 2, name="gn"), [(2, 6, 3, 3)], "GroupNormalization 'gn'"),
        (
            nm.LSTM(3, 5, num_layers=1, name="lstm"),
            [(4, 2, 3), (2, 1, 2, 5), (2, 1, 2, 5)],
            "LSTM 'lstm'",
        ),
        (nm.LSTMCell(3, 5, name="cell"), [(2, 4), (2, 5), (2, 5)], "LSTMCell 'cell'"),
        (
            nm.MultiHeadAttention(8, num_heads=2, name="mha"),
            [(3, 2, 6)] * 3,
            "MultiHeadAttention 'mha'",
        ),
        (nm.MinMaxQuantize(2, name="q"), [(2, 3, 4)], "MinMaxQuantize 'q'"),
        (nm.SVDAffine(6, 3, 2, name="fc"), [(2, 5)], "SVDAffine 'fc'"),
        (nm.INQConvolution(3, 4, (3, 3), name="conv"), [(1, 2, 5, 5)], "INQConvolution 'conv'"),
    ]
    for layer, shapes, who in bad_calls:
        with pytest.raises(ValueError, match=who):
            layer(*[nn.Variable(s) for s in shapes])


def test_lstm_owns_parameters_it_finds_in_the_registry():
    """PF.lstm reads existing weights with get_parameter: the module owns them all the same."""
    with nn.parameter_scope("enc"):
        PF.lstm(nn.Variable((2, 1, 3)), nn.Variable((1, 1, 1, 4)), nn.Variable((1, 1, 1, 4)))
    existing = nn.get_parameters()
    lstm = nm.LSTM(3, 4, num_layers=1, name="enc")  # all sizes known: eager
    assert list(lstm.get_parameters()) == ["lstm/weight_l0", "lstm/bias"]
    assert all(p is existing[f"enc/{k}"] for k, p in lstm.get_parameters().items())


def test_svd_affine_owns_the_factors_pf_sets():
    fc = nm.SVDAffine(6, 4, 2, name="fc")
    assert list(fc.get_parameters()) == ["svd_affine/U", "svd_affine/V", "svd_affine/b"]
    assert fc.freeze().get_parameters() == {}


def test_spectral_norm_wrapper_takes_the_place_of_its_layer():
    conv = nm.Conv2d(3, 4, 3)
    wrapped = nm.SpectralNorm(conv, name="conv0")
    assert conv.prefix == "conv0"
    assert [name for name, _ in wrapped.named_modules()] == ["", ""]
    assert "layer=" not in repr(wrapped).splitlines()[0]
    named = nm.SpectralNorm(nm.Conv2d(3, 4, 3, name="inner"), name="outer")
    assert list(named.get_parameters(grad_only=False)) == [
        "inner/conv/W",
        "inner/conv/spectral-norm/u",
        "inner/conv/b",
    ]
    with pytest.raises(TypeError, match="apply_w"):
        nm.SpectralNorm(nm.BatchNorm2d(3))
    with pytest.raises(TypeError, match="apply_w"):
        nm.WeightNormalization(lambda x: x)


def test_spectral_norm_of_a_layer_that_has_an_apply_w_composes():
    def double(w):
        return w * 2

    layer = nm.Affine(3, 2, apply_w=double)
    sn = nm.SpectralNorm(layer, dim=1, name="fc")
    y = sn(nn.Variable((1, 3)))
    functions = []
    y.visit(lambda f: functions.append(f.info.type_name))
    assert functions.index("MulScalar") < functions.index("SpectralNorm")


def test_a_cloned_wrapper_reparameterizes_its_own_layer():
    source = nm.SpectralNorm(nm.Conv2d(3, 4, 3), name="source")
    source(nn.Variable((1, 3, 5, 5)))
    twin = source.clone(name="twin")
    assert list(twin.get_parameters(grad_only=False)) == [
        "conv/W",
        "conv/spectral-norm/u",
        "conv/b",
    ]
    y = twin.eval()(nn.Variable((1, 3, 5, 5)))  # the twin's mode, not the source's
    functions = []
    y.visit(lambda f: functions.append(f.info))
    assert [f.args["test"] for f in functions if f.type_name == "SpectralNorm"] == [True]


# --- the docstrings' Shape sections ------------------------------------------------------

#: What the Shape notes say of per-axis arguments left out.
_AXIS_DEFAULTS = {"pad": 0, "output_padding": 0, "stride": 1, "dilation": 1}


def _bind(pattern, shape, names, where):
    """Matches ``shape`` to the documented ``pattern``, naming its sizes in ``names``.

    ``*name`` takes the axes the others leave; where there are two, the first
    (``*batch``) takes ``base_axis`` of them, as the notes say.
    """
    elements = ast.parse(pattern, mode="eval").body.elts
    starred = [i for i, e in enumerate(elements) if isinstance(e, ast.Starred)]
    lengths = [1] * len(elements)
    if len(starred) == 2:
        lengths[starred[0]] = names["base_axis"]
    if starred:
        lengths[starred[-1]] = len(shape) - sum(lengths) + 1
    assert sum(lengths) == len(shape) and min(lengths) >= 0, f"{where}: {shape}"
    at = 0
    for element, length in zip(elements, lengths):
        sizes, at = shape[at : at + length], at + length
        if isinstance(element, ast.Starred):
            names[element.value.id] = np.array(sizes, dtype=int)
        elif isinstance(element, ast.Name) and names.get(element.id) is None:
            names[element.id] = sizes[0]
        else:
            expected = eval(compile(ast.Expression(element), where, "eval"), names)
            assert expected == sizes[0], f"{where}: {ast.unparse(element)} is {expected}"


def _documented_shapes_hold(row, name):
    layer = row["module"](name="")
    shapes = type(layer).shapes
    xs = [nn.Variable(shape) for shape in row["shapes"]]
    args, _ = row["inputs"](xs)
    outputs = layer(*args)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    if isinstance(layer, nm.layers.reparam._Reparameterization) and layer.config["layer"]:
        return  # the wrapped layer's shapes
    names = {"prod": lambda sizes: int(np.prod(sizes)), "len": len}
    for arg, value in layer.config.items():
        if value is None and arg in _AXIS_DEFAULTS:
            value = _AXIS_DEFAULTS[arg]
        names[arg] = np.array(value) if isinstance(value, (tuple, list)) else value
    for arg, default in _AXIS_DEFAULTS.items():
        names.setdefault(arg, default)
    for (input_name, pattern), x in zip(shapes.inputs, args):
        _bind(pattern, x.shape, names, f"{name}: input {input_name} {pattern}")
    for rule in shapes.where:
        statement = ast.parse(rule).body[0]
        if isinstance(statement, ast.Assign):
            exec(compile(rule, name, "exec"), names)
        else:
            assert np.all(eval(rule, names)), f"{name}: {rule}"
    assert len(outputs) == len(shapes.outputs), name
    for (output_name, pattern), y in zip(shapes.outputs, outputs):
        documented = tuple(int(size) for size in eval(pattern, names))
        assert documented == y.shape, f"{name}: output {output_name} {pattern}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_shape_section_of_each_layer_says_what_it_computes(name):
    """Each layer's docstring gives its inputs' and outputs' shapes; here they meet NNabla's."""
    row = CASES[name]
    cls = type(row["module"](name=""))
    assert "\nShape:\n    - Input ``" in cls.__doc__, name
    _documented_shapes_hold(row, name)


def test_every_layer_class_has_a_shape_section():
    for name in nm.layers.__all__:
        value = getattr(nm.layers, name)
        if isinstance(value, type) and issubclass(value, nm.Layer) and value.pf_function:
            assert value.shapes is not None and "\nShape:\n" in value.__doc__, name
