"""Layer rules beyond the PF tables: printing before the first call, initializers, pinned modes."""

import nnabla as nn
import nnabla.functions as F
import nnabla.initializer as I
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from conftest import snapshot

import nnabla_modules as nm

# --- print(model) before the first call ---------------------------------------------


class Block(nm.Module):
    def __init__(self, cin, cout):
        self.conv0 = nm.Conv2d(cin, cout, 3, pad=1, w_init=I.NormalInitializer(0.02),
                               with_bias=False)  # fmt: skip
        self.bn0 = nm.BatchNorm2d(cout)
        self.conv1 = nm.SpectralNorm(nm.Conv2d(cout, cout, 3, pad=1))

    def __call__(self, x):
        return self.conv1(F.relu(self.bn0(self.conv0(x))))


class Net(nm.Module):
    def __init__(self, lazy_head=False):
        self.blocks = nm.ModuleList([Block(3, 4), Block(4, 8)])
        self.gru = nm.GRU(8, 6, num_layers=2, bidirectional=True, dropout=0.1)
        self.head = nm.Linear(None if lazy_head else 12, 2)

    def __call__(self, x):
        h = self.blocks[1](self.blocks[0](x))
        seq = F.transpose(F.reshape(h, h.shape[:2] + (-1,)), (2, 0, 1))
        state = nn.Variable.from_numpy_array(np.zeros((2, 2, x.shape[0], 6)))
        return self.head(F.mean(self.gru(seq, state)[0], axis=0))


def _first_call_values(print_first):
    nn.clear_parameters()
    nn.seed(5)
    model = Net(name="net")
    if print_first:
        assert "params" in repr(model)
        assert nn.get_parameters(grad_only=False) == {}  # nothing created
    model(nn.Variable((3, 3, 4, 4)))
    return snapshot()


def test_printing_before_the_first_call_creates_and_draws_nothing():
    state = nn.random.prng.get_state()
    text = repr(Net(name="net"))
    after = nn.random.prng.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(state[1:], after[1:]))
    assert nn.get_parameters(grad_only=False) == {}
    assert "no parameters yet" not in text
    first, printed = _first_call_values(False), _first_call_values(True)
    assert list(first) == list(printed)
    assert all(np.array_equal(first[k], printed[k]) for k in first)


def test_printed_counts_are_the_created_counts():
    model = Net(name="net")
    before = repr(model).splitlines()
    model(nn.Variable((3, 3, 4, 4)))
    after = repr(model).splitlines()
    assert before == after
    total = sum(p.size for p in model.get_parameters(grad_only=False).values())
    assert f"# net, {total:,} params" in after[0]
    assert all(len(line) <= 100 for line in after), max(after, key=len)


def test_a_lazy_layer_marks_the_count_as_partial():
    model = Net(lazy_head=True, name="net")
    lines = repr(model).splitlines()
    assert "params" in lines[0] and "+ params" in lines[0]
    assert [line for line in lines if "(head)" in line][0].endswith("no parameters yet")
    model(nn.Variable((3, 3, 4, 4)))
    assert "+" not in repr(model).splitlines()[0]


# --- initializers draw from the generator current at creation -------------------------


def test_a_model_built_then_seeded_gets_the_pf_codes_values():
    x = nn.Variable((2, 3, 5, 5))

    def pf_code():
        h = PF.convolution(x, 4, (3, 3), w_init=I.NormalInitializer(0.01), name="conv")
        h = PF.batch_normalization(h, param_init={"gamma": I.UniformInitializer((0.5, 1.5))},
                                   name="bn")  # fmt: skip
        return PF.affine(h, 3, w_init=I.UniformInitializer((-0.1, 0.1)), name="fc")

    nn.seed(42)
    pf_code()
    expected = snapshot()

    model = nm.Sequential(
        conv=nm.Conv2d(3, 4, 3, w_init=I.NormalInitializer(0.01)),
        bn=nm.BatchNorm2d(4, param_init={"gamma": I.UniformInitializer((0.5, 1.5))}),
        fc=nm.Linear(None, 3, w_init=I.UniformInitializer((-0.1, 0.1))),
        name="",
    )
    nn.clear_parameters()
    nn.seed(42)  # after construction, as the migration guide does
    model(x)
    got = snapshot()
    assert list(got) == list(expected)
    for key in expected:
        assert np.array_equal(got[key], expected[key]), key


def test_get_parameters_after_the_seed_draws_from_it_too():
    conv = nm.Conv2d(3, 4, 3, w_init=I.NormalInitializer(0.01), name="conv")
    nn.seed(7)
    created = conv.get_parameters()["conv/W"].d.copy()
    nn.clear_parameters()
    nn.seed(7)
    PF.convolution(nn.Variable((1, 3, 3, 3)), 4, (3, 3), w_init=I.NormalInitializer(0.01),
                   name="conv")  # fmt: skip
    assert np.array_equal(created, nn.get_parameters()["conv/conv/W"].d)


def test_an_initializer_with_its_own_generator_keeps_it():
    init = I.NormalInitializer(1.0, rng=np.random.RandomState(3))
    conv = nm.Conv2d(3, 4, 3, w_init=init, name="conv")
    nn.seed(9)
    created = conv.get_parameters()["conv/W"].d
    expected = np.random.RandomState(3).randn(4, 3, 3, 3).astype(np.float32)
    assert np.array_equal(created, expected)
    assert conv.config["w_init"] is init  # the user's object, unchanged


# --- mode flags given to the constructor are pinned -----------------------------------


def _arg_of(y, function, arg):
    found = []
    y.visit(lambda f: found.append(f.info.args[arg]) if f.info.type_name == function else None)
    return found


@pytest.mark.parametrize("how", ["eval", "test"])
def test_a_mode_flag_given_to_the_constructor_holds_in_inference(how):
    x, seq, h = nn.Variable((4, 3, 2, 2)), nn.Variable((5, 2, 3)), nn.Variable((1, 1, 2, 4))

    def infer(layer, *inputs):
        return layer.eval()(*inputs) if how == "eval" else layer(*inputs, test=True)

    assert _arg_of(infer(nm.BatchNorm2d(3, batch_stat=True), x), "BatchNormalization",
                   "batch_stat") == [True]  # fmt: skip
    assert _arg_of(infer(nm.BatchNorm2d(3), x), "BatchNormalization", "batch_stat") == [False]
    assert _arg_of(infer(nm.GRU(3, 4, training=True), seq, h)[0], "GRU", "training") == [True]
    assert _arg_of(infer(nm.GRU(3, 4), seq, h)[0], "GRU", "training") == [False]
    # a rate is no mode: inference still turns the dropout off
    assert _arg_of(infer(nm.GRU(3, 4, dropout=0.5), seq, h)[0], "GRU", "dropout") == [0.0]


def test_a_pinned_batch_norm_in_eval_equals_the_pf_call():
    data = np.random.RandomState(0).randn(4, 3, 2, 2).astype(np.float32)
    x = nn.Variable.from_numpy_array(data)
    y = PF.batch_normalization(x, batch_stat=True, name="bn")
    y.forward()
    expected = y.d.copy()
    nn.clear_parameters()
    got = nm.BatchNorm2d(3, batch_stat=True, name="bn").eval()(x)
    got.forward()
    assert np.array_equal(got.d, expected)


def test_rng_given_as_nnablas_generator_follows_the_seed():
    conv = nm.Conv2d(3, 4, 3, rng=nn.random.prng, name="conv")
    nn.seed(11)
    created = conv.get_parameters()["conv/W"].d.copy()
    nn.clear_parameters()
    nn.seed(11)
    PF.convolution(nn.Variable((1, 3, 3, 3)), 4, (3, 3), rng=nn.random.prng, name="conv")
    assert np.array_equal(created, nn.get_parameters()["conv/conv/W"].d)
