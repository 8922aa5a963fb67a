"""Every layer with its input sizes left out, against the PF call it stands for.

PF code never states the sizes it reads from its inputs, so every layer may
be constructed without them: it then creates its parameters at its first
call, exactly as the PF call does. Each row of the layer tables is rebuilt
without its sizes (left out, or given as None) and compared bit for bit with
PF: keys, shapes, same-seed initial values, outputs, gradients, the registry
after the step, in training and in inference.
"""

import inspect

import nnabla as nn
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from test_all_layers import _BN_INFERENCE, CASES, _compare, _module, _pf, case
from test_experimental_classes import CASES as EXPERIMENTAL_CASES
from test_experimental_classes import GRAPH_ONLY

import nnabla_modules as nm


def _seed_row(cls, args, kwargs, shapes, pf):
    inference = _BN_INFERENCE if issubclass(cls, nm.BatchNormalization) else None
    return case(lambda **n: cls(*args, **kwargs, **n), shapes, pf, inference=inference)


ROWS = {
    **CASES,
    **{
        f"seed-{name}": _seed_row(*spec)
        for name, spec in EXPERIMENTAL_CASES.items()
        if name not in GRAPH_ONLY  # channel-last convolution: the CPU builds, cannot run it
    },
}
nn.clear_parameters()
# The rows' arguments; given names keep the automatic ones free for other tests.
TEMPLATES = {
    name: row["module"](name=f"template_{i}") for i, (name, row) in enumerate(ROWS.items())
}


def _size_free_tree(module):
    return all(m.config[arg] is None for m in module.modules() for arg in type(m).input_size_args())


def without_sizes(template, as_none=False, **name):
    """A new module like ``template`` (a layer, maybe wrapping one) with no input size given."""
    cls = type(template)
    sizes = cls.input_size_args()
    defaults = {arg: p.default for arg, p in inspect.signature(cls).parameters.items()}
    config = {}
    for arg, value in template.config.items():
        if _is_default(value, defaults[arg]):
            continue  # not given: a mode flag given explicitly would be pinned
        if arg in sizes:
            if as_none:
                config[arg] = None
        elif isinstance(value, nm.Module):
            config[arg] = without_sizes(value, as_none)
        else:
            config[arg] = value
    return cls(**config, **name)


def _is_default(value, default):
    try:
        return type(value) is type(default) and bool(value == default)
    except ValueError:  # an array
        return False


def _lazy(name, as_none=False):
    return lambda: without_sizes(TEMPLATES[name], as_none, name="")


def test_every_layer_class_is_in_the_table():
    covered = {type(m) for t in TEMPLATES.values() for m in t.modules()}
    classes = {
        c
        for c in vars(nm).values()
        if isinstance(c, type) and issubclass(c, nm.Layer) and c.pf_function is not None
    }
    assert classes - covered == {nm.SyncBatchNormalization, nm.Embed}  # no communicator; no sizes
    assert nm.Embed.input_size_args() == ()


def test_every_size_can_be_left_out_by_keyword_and_positionally():
    for cls in {type(m) for t in TEMPLATES.values() for m in t.modules()}:
        params = inspect.signature(cls).parameters
        for arg in cls.input_size_args():
            assert params[arg].default is None, (cls.__name__, arg)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_without_sizes_equals_pf(name):
    row = ROWS[name]
    make = _lazy(name)

    def lazy_module(*xs):
        module = make()
        assert _size_free_tree(module)
        if not _size_free_tree(TEMPLATES[name]):  # the row gave sizes: now nothing is known
            assert module.get_parameters(grad_only=False) == {}
        args, kwargs = row["inputs"](xs)
        return module(*args, **kwargs)

    _compare(row, _pf(row), lazy_module)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_sizes_given_as_none_equal_pf(name):
    row = ROWS[name]
    _compare(row, _pf(row), _module(row, _lazy(name, as_none=True)))


@pytest.mark.parametrize("name", sorted(n for n in ROWS if ROWS[n]["inference"] is not None))
def test_without_sizes_in_inference_equals_pf_inference(name):
    row = ROWS[name]
    _compare(
        row,
        _pf(row, **row["inference"]),
        _module(row, _lazy(name), "eval"),
        row["inference_backward"],
    )


def test_the_forms_refactors_write():
    """The constructors as PF code would be refactored without arithmetic."""
    x = nn.Variable((2, 8, 5, 5))
    seq = nn.Variable((4, 2, 3))
    built = {
        "conv": nm.Conv2d(None, 16, 3)(x).shape,
        "conv-keywords": nm.Conv2d(outmaps=16, kernel=3, pad=1)(x).shape,
        "instance-norm": nm.InstanceNormalization(eps=1e-5)(x).shape,
        "group-norm": nm.GroupNormalization(num_groups=4)(x).shape,
        "gru": nm.GRU(bidirectional=True)(seq, nn.Variable((1, 2, 2, 6)))[0].shape,
        "lstm-cell": nm.LSTMCell(state_size=6)(nn.Variable((2, 3)), *[nn.Variable((2, 6))] * 2)[
            0
        ].shape,
        "linear": nm.Linear(None, 3)(nn.Variable((2, 4))).shape,
        "bn": nm.BatchNorm2d()(x).shape,
    }
    assert built == {
        "conv": (2, 16, 3, 3),
        "conv-keywords": (2, 16, 5, 5),
        "instance-norm": (2, 8, 5, 5),
        "group-norm": (2, 8, 5, 5),
        "gru": (4, 2, 12),
        "lstm-cell": (2, 6),
        "linear": (2, 3),
        "bn": (2, 8, 5, 5),
    }


def test_a_lazy_layer_then_behaves_like_any_other():
    conv = nm.Conv2d(None, 4, 3, name="conv")
    assert conv.get_parameters() == {}
    y = conv(nn.Variable((1, 3, 5, 5)))
    params = conv.get_parameters()
    assert {k: v.shape for k, v in params.items()} == {"conv/W": (4, 3, 3, 3), "conv/b": (4,)}
    conv(nn.Variable((2, 3, 7, 7)))  # the same weights
    assert all(p is conv.get_parameters()[k] for k, p in params.items())
    assert y.parent.inputs[1].d.shape == (4, 3, 3, 3)
    with pytest.raises(ValueError, match="Conv2d 'conv'"):
        conv(nn.Variable((1, 5, 5, 5)))  # other channels: PF's own size check, named


def test_a_required_pf_argument_stays_required():
    with pytest.raises(TypeError, match="outmaps"):
        nm.Conv2d(None)
    with pytest.raises(TypeError, match="num_groups"):
        nm.GroupNormalization()
    with pytest.raises(TypeError, match="state_size"):
        nm.LSTMCell()


def test_lazy_layers_under_a_named_root_equal_pf():
    class Block(nm.Module):
        def __init__(self):
            self.conv = nm.Conv2d(outmaps=4, kernel=3, pad=1)
            self.norm = nm.InstanceNormalization()

        def __call__(self, x):
            return self.norm(self.conv(x))

    def pf_code(x):
        with nn.parameter_scope("block"):
            return PF.instance_normalization(
                PF.convolution(x, 4, (3, 3), pad=(1, 1), name="conv"), name="norm"
            )

    row = case(None, [(2, 3, 6, 6)], None)
    _compare(row, pf_code, lambda x: Block(name="block")(x))


def test_a_lazy_layer_called_with_another_size_gets_advice_about_itself_only():
    """NNabla's advice, nn.clear_parameters(), would wipe every model's weights."""
    other = nm.Linear(4, 2, name="other")
    other_weight = other.get_parameters()["affine/W"].d.copy()
    fc = nm.Linear(None, 3, name="fc")
    fc(nn.Variable((2, 4)))
    with pytest.raises(ValueError) as raised:
        fc(nn.Variable((2, 5)))
    message = str(raised.value)
    assert message.startswith("Linear 'fc': The size of existing parameter \"W\" (4, 3)")
    assert "clear_parameters" not in message and "call its release()" in message
    fc.release()  # the advice works, for this layer only
    assert fc(nn.Variable((2, 5))).shape == (2, 3)
    assert fc.get_parameters()["affine/W"].shape == (5, 3)
    np.testing.assert_array_equal(other.get_parameters()["affine/W"].d, other_weight)
    conv = nm.Conv2d(None, 3, 3, name="conv")
    conv(nn.Variable((1, 2, 5, 5)))
    with pytest.raises(ValueError, match=r"^Conv2d 'conv': .*call its release\(\)"):
        conv(nn.Variable((1, 4, 5, 5)))


def test_recurrent_layers_take_the_number_of_layers_from_the_state_as_pf_does():
    """``PF.gru(x, F.constant(shape=(2, 2, B, H)), bidirectional=True)`` builds two layers."""
    batch, hidden = 3, 4
    gru = nm.GRU(bidirectional=True, name="gru")
    assert gru.get_parameters() == {}
    y, h_n = gru(nn.Variable((5, batch, 2)), nn.functions.constant(shape=(2, 2, batch, hidden)))
    assert (y.shape, h_n.shape) == ((5, batch, 2 * hidden), (2, 2, batch, hidden))
    shapes = {key: p.shape for key, p in gru.get_parameters().items()}
    assert shapes == {
        "gru/weight_l0": (2, 3, hidden, 2 + hidden),
        "gru/weight": (1, 2, 3, hidden, 3 * hidden),
        "gru/bias": (2, 2, 4, hidden),
    }
    with pytest.raises(ValueError, match=r"GRU 'gru': the state h \(3, 2, 3, 4\)"):
        gru(nn.Variable((5, batch, 2)), nn.Variable((3, 2, batch, hidden)))  # now it has 2
    pinned = nm.LSTM(2, hidden, num_layers=1, name="lstm")
    assert list(pinned.get_parameters()) == ["lstm/weight_l0", "lstm/bias"]  # eager
    state = nn.Variable((2, 1, batch, hidden))
    with pytest.raises(ValueError, match=r"LSTM 'lstm': the state h \(2, 1, 3, 4\) has 2 "
                                         r"layer.*leave num_layers out.*num_layers=1"):  # fmt: skip
        pinned(nn.Variable((5, batch, 2)), state, state)
