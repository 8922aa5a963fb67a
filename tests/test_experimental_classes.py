"""The experimental classes' names against the PF calls they stand for: keys, values, outputs."""

import inspect

import nnabla as nn
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from equivalence import assert_equivalent, run

import nnabla_modules as nm

# (class, constructor args, constructor kwargs, input shapes, the equivalent PF call)
CASES = {
    "Affine": (nm.Affine, (12, 5), {}, [(3, 12)], lambda x, **k: PF.affine(x, 5, **k)),
    "Affine-tuple": (nm.Affine, ((3, 4), (2, 3)), {}, [(2, 3, 4)],
                     lambda x, **k: PF.affine(x, (2, 3), **k)),
    "Affine-base_axis": (nm.Affine, (4, 6), {"base_axis": 2, "with_bias": False}, [(2, 3, 4)],
                         lambda x, **k: PF.affine(x, 6, base_axis=2, with_bias=False, **k)),
    "Linear": (nm.Linear, (12, 5), {}, [(3, 12)], lambda x, **k: PF.affine(x, 5, **k)),
    "Convolution": (nm.Convolution, (3, 4, (3, 3)), {"pad": (1, 1), "stride": (2, 2)},
                    [(2, 3, 7, 7)],
                    lambda x, **k: PF.convolution(x, 4, (3, 3), pad=(1, 1), stride=(2, 2), **k)),
    "Conv1d": (nm.Conv1d, (3, 4, 3), {"dilation": 2}, [(2, 3, 9)],
               lambda x, **k: PF.convolution(x, 4, (3,), dilation=(2,), **k)),
    "Conv2d": (nm.Conv2d, (4, 6, (3, 3)), {"group": 2}, [(2, 4, 5, 5)],
               lambda x, **k: PF.convolution(x, 6, (3, 3), group=2, **k)),
    "Conv2d-channel_last": (nm.Conv2d, (3, 4, (3, 3)), {"channel_last": True}, [(2, 5, 5, 3)],
                            lambda x, **k: PF.convolution(x, 4, (3, 3), channel_last=True, **k)),
    "Conv3d": (nm.Conv3d, (2, 3, (2, 2, 2)), {}, [(1, 2, 3, 3, 3)],
               lambda x, **k: PF.convolution(x, 3, (2, 2, 2), **k)),
    "ConvNd": (nm.ConvNd, (2, 3, (2,)), {"with_bias": False}, [(2, 2, 5)],
               lambda x, **k: PF.convolution(x, 3, (2,), with_bias=False, **k)),
    "Deconvolution": (nm.Deconvolution, (4, 6, (3, 3)), {"stride": (2, 2)}, [(2, 4, 3, 3)],
                      lambda x, **k: PF.deconvolution(x, 6, (3, 3), stride=(2, 2), **k)),
    "Deconv1d": (nm.Deconv1d, (2, 3, 2), {}, [(2, 2, 4)],
                 lambda x, **k: PF.deconvolution(x, 3, (2,), **k)),
    "Deconv2d": (nm.Deconv2d, (4, 6, (2, 2)),
                 {"stride": (2, 2), "output_padding": (1, 1), "group": 2}, [(1, 4, 3, 3)],
                 lambda x, **k: PF.deconvolution(x, 6, (2, 2), stride=(2, 2),
                                                 output_padding=(1, 1), group=2, **k)),
    "Deconv3d": (nm.Deconv3d, (2, 2, (2, 2, 2)), {}, [(1, 2, 2, 2, 2)],
                 lambda x, **k: PF.deconvolution(x, 2, (2, 2, 2), **k)),
    "DeconvNd": (nm.DeconvNd, (2, 2, (3,)), {}, [(1, 2, 4)],
                 lambda x, **k: PF.deconvolution(x, 2, (3,), **k)),
    "BatchNormalization": (nm.BatchNormalization, (3, 2), {}, [(8, 3)],
                           lambda x, **k: PF.batch_normalization(x, **k)),
    "BatchNormalization-axes": (nm.BatchNormalization, (4, 4), {"axes": [3], "eps": 1e-3},
                                [(2, 3, 3, 4)],
                                lambda x, **k: PF.batch_normalization(x, axes=[3], eps=1e-3,
                                                                      **k)),
    "BatchNorm1d": (nm.BatchNorm1d, (3,), {"no_scale": True}, [(4, 3, 5)],
                    lambda x, **k: PF.batch_normalization(x, no_scale=True, **k)),
    "BatchNorm2d": (nm.BatchNorm2d, (3,), {"decay_rate": 0.5}, [(4, 3, 2, 2)],
                    lambda x, **k: PF.batch_normalization(x, decay_rate=0.5, **k)),
    "BatchNorm3d": (nm.BatchNorm3d, (2,), {"no_bias": True}, [(2, 2, 2, 2, 2)],
                    lambda x, **k: PF.batch_normalization(x, no_bias=True, **k)),
}


# NNabla's CPU convolution computes no channel_last: compare the graphs, not outputs.
GRAPH_ONLY = {"Conv2d-channel_last"}


def _embed_inputs(build):
    def with_indices(x):
        idx = nn.Variable.from_numpy_array(np.array([[1, 0, 9], [3, 3, 2]], dtype=np.int32))
        return build(idx)

    return with_indices


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("given_name", ["", "layer1"])
def test_layer_equals_pf(case, given_name):
    cls, args, kwargs, shapes, pf_call = CASES[case]
    pf_name = {"name": given_name} if given_name else {}
    forward = case not in GRAPH_ONLY
    expected = run(lambda *xs: pf_call(*xs, **pf_name), shapes, forward=forward)
    got = run(lambda *xs: cls(*args, name=given_name, **kwargs)(*xs), shapes, forward=forward)
    assert_equivalent(expected, got)


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_under_a_named_root(case):
    cls, args, kwargs, shapes, pf_call = CASES[case]

    class Net(nm.Module):
        def __init__(self):
            self.layer = cls(*args, **kwargs)

        def __call__(self, x):
            return self.layer(x)

    def pf_code(x):
        with nn.parameter_scope("net"):
            return pf_call(x, name="layer")

    forward = case not in GRAPH_ONLY
    assert_equivalent(run(pf_code, shapes, forward=forward),
                      run(lambda x: Net(name="net")(x), shapes, forward=forward))


@pytest.mark.parametrize("case", sorted(CASES))
def test_eager_creation_gives_pf_values(case):
    """get_parameters() before the first call: PF's keys, shapes and same-seed values."""
    cls, args, kwargs, shapes, pf_call = CASES[case]
    forward = case not in GRAPH_ONLY
    expected = run(lambda *xs: pf_call(*xs), shapes, backward=False, forward=forward)

    def eager_then_call(*xs):
        layer = cls(*args, name="", **kwargs)
        params = layer.get_parameters(grad_only=False)
        assert list(params) == expected["keys"]
        return layer(*xs)

    assert_equivalent(expected, run(eager_then_call, shapes, backward=False, forward=forward))


@pytest.mark.parametrize("given_name", ["", "words"])
def test_embed_equals_pf(given_name):
    pf_name = {"name": given_name} if given_name else {}
    expected = run(_embed_inputs(lambda i: PF.embed(i, 10, 4, **pf_name)), [(1,)])
    got = run(_embed_inputs(lambda i: nm.Embed(10, 4, name=given_name)(i)), [(1,)])
    assert_equivalent(expected, got)


def test_embed_takes_w_init_or_initializer():
    values = np.arange(12, dtype=np.float32).reshape(6, 2)

    def init(shape):  # PF.embed tests `not initializer`, so no bare numpy array
        return values.reshape(shape)

    for kwargs in ({"w_init": init}, {"initializer": init}):
        nn.clear_parameters()
        emb = nm.Embed(6, 2, name="e", **kwargs)
        assert np.array_equal(emb.get_parameters()["embed/W"].d, values)
    with pytest.raises(TypeError, match="w_init or initializer"):
        nm.Embed(6, 2, w_init=init, initializer=init)


SEED_SIGNATURES = {
    # The experimental classes' constructors: these positional orders are kept.
    nm.Affine: ["n_inmaps", "n_outmaps", "base_axis", "w_init", "b_init", "fix_parameters",
                "rng", "with_bias"],
    nm.Convolution: ["inmaps", "outmaps", "kernel", "pad", "stride", "dilation", "group",
                     "w_init", "b_init", "base_axis", "fix_parameters", "rng", "with_bias"],
    nm.Deconvolution: ["inmaps", "outmaps", "kernel", "pad", "stride", "dilation", "group",
                       "w_init", "b_init", "base_axis", "fix_parameters", "rng", "with_bias"],
    nm.BatchNormalization: ["n_features", "n_dims", "axes", "decay_rate", "eps", "batch_stat",
                            "output_stat", "fix_parameters", "param_init"],
    nm.BatchNorm2d: ["n_features", "axes", "decay_rate", "eps", "batch_stat", "output_stat",
                     "fix_parameters", "param_init"],
    nm.Embed: ["n_inputs", "n_features", "w_init", "fix_parameters"],
}


@pytest.mark.parametrize("cls", list(SEED_SIGNATURES), ids=lambda c: c.__name__)
def test_seed_positional_order_and_pf_extras(cls):
    params = inspect.signature(cls).parameters
    positional = [n for n, p in params.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == SEED_SIGNATURES[cls]
    pf_args = set(inspect.signature(cls.pf_function).parameters) - {"inp", "name"}
    assert pf_args <= set(params), "every PF argument is accepted"
    for name in pf_args:  # PF's defaults, PF's eps
        assert params[name].default == inspect.signature(cls.pf_function).parameters[name].default


def test_seed_batch_norm_eps_is_honoured():
    """The experimental BatchNorm1d dropped eps; PF's semantics win here."""
    bn = nm.BatchNorm1d(3, eps=0.5, name="bn")
    y = bn(nn.Variable((2, 3, 4)))
    assert y.parent.info.args["eps"] == 0.5
