"""module.clone(name=...) and copy.deepcopy(module): new prefix, equal values, independent."""

import copy
import gc

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import nnabla.random
import numpy as np
import pytest
from models import ResUnit, Stack

import nnabla_modules as nm


def values(module):
    return {k: v.d.copy() for k, v in module.get_parameters(grad_only=False).items()}


def assert_equal_values(a, b):
    assert list(a) == list(b)
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def test_clone_has_its_own_prefix_and_equal_values():
    unit = ResUnit(8, 16)
    twin = unit.clone(name="twin")
    assert type(twin) is ResUnit
    assert twin.prefix == "twin"
    assert twin.conv0.prefix == "twin/conv0"
    assert_equal_values(values(unit), values(twin))
    assert "twin/conv0/conv/W" in nn.get_parameters()
    ours, theirs = unit.get_parameters(grad_only=False), twin.get_parameters(grad_only=False)
    assert all(ours[k] is not theirs[k] for k in ours)


def test_changing_one_does_not_change_the_other():
    unit = ResUnit(8, 8)
    twin = copy.deepcopy(unit)
    original = values(unit)
    for param in twin.get_parameters(grad_only=False).values():
        param.d += 1.0
    assert_equal_values(values(unit), original)
    twin.conv1.config["pad"] = (0, 0)  # the configuration is a copy too
    assert unit.conv1.config["pad"] == (1, 1)


def test_deepcopy_gets_the_next_automatic_name():
    unit = ResUnit(8, 8)
    first, second = copy.deepcopy(unit), copy.deepcopy(unit)
    assert (first.prefix, second.prefix) == ("res_unit_1", "res_unit_2")
    named = ResUnit(8, 8, name="encoder")
    assert copy.deepcopy(named).prefix == "encoder_1"


def test_a_dead_copy_name_is_reused_with_fresh_values():
    unit = ResUnit(8, 8)
    copy.deepcopy(unit).get_parameters()["conv0/conv/W"].d = 7.0  # dies at once
    gc.collect()
    again = unit.clone()
    assert again.prefix == "res_unit_1"
    assert_equal_values(values(unit), values(again))


def test_the_structure_is_copied_with_the_same_relative_keys():
    stack = Stack()
    twin = stack.clone(name="twin")
    assert twin.again is twin.stem  # the shared child stays one module
    assert twin.blocks[1][0].prefix == "twin/blocks/1/0"
    assert twin.heads["cls"].prefix == "twin/heads/cls"
    assert twin.late[0] is not stack.late[0]
    assert [name for name, _ in twin.named_modules()] == [name for name, _ in stack.named_modules()]
    assert_equal_values(values(stack), values(twin))


def test_the_copy_computes_the_same_outputs():
    unit = ResUnit(8, 16).eval()
    for param in unit.get_parameters(grad_only=False).values():
        param.d = np.random.RandomState(0).randn(*param.shape).astype(np.float32)
    twin = unit.clone()
    x = nn.Variable.from_numpy_array(np.random.RandomState(1).randn(2, 8, 4, 4))
    y, z = unit(x), twin(x)
    F.sink(y, z).forward()
    assert not twin.training
    assert np.array_equal(y.d, z.d)


def test_a_frozen_module_gives_a_frozen_copy():
    unit = ResUnit(8, 8)
    unit.conv0.freeze()
    twin = unit.clone()
    assert list(twin.get_parameters()) == list(unit.get_parameters())
    twin.conv0.unfreeze()
    assert "conv0/conv/W" in twin.get_parameters()
    assert "conv0/conv/W" not in unit.get_parameters()


@pytest.mark.parametrize("frozen", ["whole", "part"])
def test_a_frozen_modules_copy_lists_its_frozen_weights_as_the_source_does(frozen):
    # docs/concepts.md, Order: parameters() lists frozen weights, so a Polyak update over
    # zip(target.parameters(), model.parameters()) pairs layer with layer in a copy too.
    class Net(nm.Module):
        def __init__(self):
            self.fc = nm.Linear(4, 3)

        def __call__(self, x):
            return PF.affine(self.fc(x), 2, name="out")

    net = Net()
    net(nn.Variable((2, 4)))
    (net if frozen == "whole" else net.fc).freeze()
    for twin in (net.clone(name="target"), copy.deepcopy(net)):
        assert [k for k, _ in twin.named_parameters()] == [k for k, _ in net.named_parameters()]
        assert list(twin.get_parameters()) == list(net.get_parameters())
        twin(nn.Variable((2, 4)))
        assert [k for k, _ in twin.named_parameters()] == ["out/affine/W", "out/affine/b",
                                                          "fc/affine/W", "fc/affine/b"]
        assert list(twin.get_parameters()) == list(net.get_parameters())


def test_a_lazy_module_copy_picks_its_values_up_at_its_first_call():
    class Lazy(nm.Module):
        def __call__(self, x):
            return PF.affine(F.relu(PF.convolution(x, 4, (3, 3), name="conv")), 3, name="fc")

    lazy = Lazy(name="lazy")
    x = nn.Variable.from_numpy_array(np.random.RandomState(0).randn(2, 3, 5, 5))
    y = lazy(x)
    twin = lazy.clone(name="twin")
    assert sorted(nn.get_parameters()) == sorted(
        [
            f"{p}/{k}"
            for p in ("lazy", "twin")
            for k in ("conv/conv/W", "conv/conv/b", "fc/affine/W", "fc/affine/b")
        ]
    )
    z = twin(x)
    assert_equal_values(values(lazy), values(twin))
    F.sink(y, z).forward()
    assert np.array_equal(y.d, z.d)


def test_a_lazy_copy_under_a_reused_name_keeps_its_values():
    class Lazy(nm.Module):
        def __call__(self, x):
            return PF.affine(x, 2, name="fc")

    lazy = Lazy()
    x = nn.Variable.from_numpy_array(np.ones((1, 3)))
    lazy(x)
    copy.deepcopy(lazy)(x)  # lazy_1 dies: its entries go stale
    gc.collect()
    again = lazy.clone()
    assert again.prefix == "lazy_1"
    again(x)
    assert_equal_values(values(lazy), values(again))


class _HeadOnEncoder(nm.Module):
    """Children and PF code of its own: a load before its first call is checked by that call."""

    def __init__(self, *, name=None):
        self.enc = nm.Linear(4, 8)

    def __call__(self, x):
        return PF.affine(F.relu(self.enc(x)), 3, name="head")


class _Holder(nm.Module):
    def __init__(self, *, name=None):
        self.net = _HeadOnEncoder()


_COPIERS = [lambda m: m.clone(name="teacher"), copy.deepcopy]


@pytest.mark.parametrize("copier", _COPIERS, ids=["clone", "deepcopy"])
@pytest.mark.parametrize("misfit", ["missing", "unused"])
def test_a_copy_made_after_a_strict_load_before_the_first_call_is_checked_by_its_own_call(
    copier, misfit
):
    # docs/checkpoints.md: the call checks a strict load made before it; a copy made in
    # between (an EMA, a teacher) must not run on PF's initial values where the file fits not.
    if misfit == "missing":
        state = _HeadOnEncoder(name="saved").state_dict()  # never called: no head/ keys
    else:
        called = _HeadOnEncoder(name="saved")
        called(nn.Variable((2, 4)))
        state = {**called.state_dict(), "head/affine/extra": np.zeros(3)}
    model = _HeadOnEncoder()
    model.load_state_dict(state)
    twin = copier(model)
    with pytest.raises(nm.checkpoint.CheckpointError, match="head/affine/"):
        twin(nn.Variable((2, 4)))
    with pytest.raises(nm.checkpoint.CheckpointError, match="head/affine/"):
        model(nn.Variable((2, 4)))


@pytest.mark.parametrize("copier", _COPIERS, ids=["clone", "deepcopy"])
def test_a_copy_made_after_a_load_that_fits_before_the_first_call_runs_on_the_files_values(copier):
    called = _HeadOnEncoder(name="saved")
    called(nn.Variable((2, 4)))
    for param in called.get_parameters().values():
        param.d = np.random.RandomState(0).randn(*param.shape).astype(np.float32)
    holder = _Holder()
    holder.load_state_dict({f"net/{k}": v for k, v in called.state_dict().items()})
    twin = copier(holder.net)  # a child: the keys of the load under it
    twin(nn.Variable((2, 4)))
    assert_equal_values(values(twin), called.state_dict())
    holder.net(nn.Variable((2, 4)))
    assert_equal_values(values(holder.net), called.state_dict())


@pytest.mark.parametrize("copier", _COPIERS, ids=["clone", "deepcopy"])
def test_a_copy_of_a_child_after_a_strict_load_into_its_parent_is_checked_by_its_own_call(copier):
    holder = _Holder()
    holder.load_state_dict(_Holder(name="saved").state_dict())  # never called: no net/head/ keys
    twin = copier(holder.net)
    with pytest.raises(nm.checkpoint.CheckpointError, match="head/affine/W"):
        twin(nn.Variable((2, 4)))


def test_a_name_that_would_overwrite_values_is_refused():
    unit = ResUnit(8, 8)
    with nn.parameter_scope("taken"):
        PF.convolution(nn.Variable((1, 8, 3, 3)), 4, (1, 1), name="conv0")
    before = nn.get_parameters()["taken/conv0/conv/W"].d.copy()
    with pytest.raises(ValueError, match="'taken/conv0/conv/W'"):
        unit.clone(name="taken")
    assert np.array_equal(nn.get_parameters()["taken/conv0/conv/W"].d, before)
    assert unit.clone().prefix == "res_unit_1"
    with pytest.raises(ValueError, match="contains '/'"):
        unit.clone(name="a/b")


def test_the_automatic_name_skips_prefixes_the_registry_holds():
    with nn.parameter_scope("res_unit_1"):
        PF.convolution(nn.Variable((1, 8, 3, 3)), 4, (1, 1), name="conv0")
    assert ResUnit(8, 8).clone().prefix == "res_unit_2"


def test_a_child_is_copied_as_a_root():
    unit = ResUnit(8, 8)
    conv = copy.deepcopy(unit.conv1)
    assert conv.prefix == "conv1"
    assert list(conv.get_parameters()) == ["conv/W", "conv/b"]
    assert_equal_values(values(unit.conv1), values(conv))
    assert unit.conv1.prefix == "res_unit/conv1"


def test_modules_of_other_models_and_variables_are_shared():
    encoder = ResUnit(8, 8, name="encoder")

    class Head(nm.Module):
        def __init__(self, encoder):
            self.fc = nm.Linear(8 * 4 * 4, 2)
            self.refs = {"encoder": encoder}  # held, not owned (it has a parent elsewhere)
            self.cache = [nn.Variable((1,))]

    class Model(nm.Module):
        def __init__(self):
            self.encoder = encoder
            self.head = Head(encoder)

    model = Model(name="model")
    head_copy = copy.deepcopy(model.head)
    assert head_copy.refs["encoder"] is encoder
    assert head_copy.cache[0] is model.head.cache[0]
    assert head_copy.prefix == "head"


def test_copying_leaves_the_random_generator_alone():
    unit = ResUnit(8, 8)
    unit.get_parameters()
    state = nnabla.random.prng.get_state()
    unit.clone()
    after = nnabla.random.prng.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(state[1:3], after[1:3]))
