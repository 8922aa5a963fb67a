"""NNabla's blog example of the experimental classes: keys pinned, equal to PF."""

import nnabla as nn
import nnabla.solvers as S
import numpy as np
import pytest
from equivalence import assert_equivalent, run
from golden import check
from models import ResUnit, Stack, res_unit_pf, stack_pf


def test_the_blog_example_runs_as_written():
    unit = ResUnit(64, 128)
    y = unit(nn.Variable((8, 64, 16, 16)))
    assert y.shape == (8, 128, 16, 16)
    assert unit.prefix == "res_unit"


@pytest.mark.parametrize("inmaps, outmaps", [(8, 8), (8, 16)])
@pytest.mark.parametrize("test", [False, True])
def test_res_unit_equals_its_pf_code(inmaps, outmaps, test):
    def pf_code(x):
        with nn.parameter_scope("res_unit"):
            return res_unit_pf(x, inmaps, outmaps, test=test)

    expected = run(pf_code, [(4, inmaps, 6, 6)])
    got = run(lambda x: ResUnit(inmaps, outmaps)(x, test), [(4, inmaps, 6, 6)])
    assert_equivalent(expected, got)


def test_drop_in_res_unit_has_the_pf_code_keys():
    expected = run(lambda x: res_unit_pf(x, 8, 16), [(2, 8, 4, 4)])
    got = run(lambda x: ResUnit(8, 16, name="")(x), [(2, 8, 4, 4)])
    assert_equivalent(expected, got)


def test_containers_equal_their_pf_code():
    expected = run(lambda x: stack_pf(x), [(2, 3, 8, 8)])
    got = run(lambda x: Stack(name="")(x), [(2, 3, 8, 8)])
    assert_equivalent(expected, got)


GOLDEN_MODELS = {
    "res_unit_64_128": lambda: ResUnit(64, 128),
    "res_unit_drop_in": lambda: ResUnit(16, 16, name=""),
    "stack": lambda: Stack(name="stack"),
}


@pytest.mark.parametrize("model", sorted(GOLDEN_MODELS))
def test_keys_are_pinned(model):
    m = GOLDEN_MODELS[model]()
    m.get_parameters()
    registry = [f"{k} {v.shape}" for k, v in nn.get_parameters(grad_only=False).items()]
    relative = list(m.get_parameters(grad_only=False))
    check(model, {"prefix": m.prefix, "registry": registry, "relative": relative})


def test_train_a_few_steps_with_a_solver():
    """ResUnit trains with an NNabla solver given get_parameters()."""
    model = ResUnit(4, 8, name="net")
    x = nn.Variable.from_numpy_array(np.random.RandomState(0).randn(8, 4, 5, 5))
    target = nn.Variable.from_numpy_array(np.zeros((8, 8, 5, 5)))
    loss = nn.functions.mean(nn.functions.squared_error(model(x), target))
    solver = S.Adam(1e-2)
    solver.set_parameters(model.get_parameters())
    assert sorted(solver.get_parameters()) == sorted(model.get_parameters())  # a plain dict
    losses = []
    for _ in range(5):
        loss.forward()
        solver.zero_grad()
        loss.backward()
        solver.update()
        losses.append(float(loss.d))
    assert losses[-1] < losses[0]
    registry = nn.get_parameters()
    for key, param in model.get_parameters().items():
        assert registry["net/" + key] is param
