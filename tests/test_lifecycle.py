"""Workflows of training code (target networks, EMA, fine-tuning, resume, surgery,
forked workers), each checked against the rules of docs/concepts.md."""

import os
import threading

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from conftest import assert_same_arrays

import nnabla_modules as nm


@pytest.fixture(autouse=True)
def fresh_registry():
    nn.clear_parameters()
    yield
    nn.clear_parameters()


class TwoLayers(nm.Module):
    """Attribute order (b, a) differs from call order (a, b)."""

    def __init__(self):
        self.b = nm.Linear(4, 4)
        self.a = nm.Linear(4, 4)

    def __call__(self, x):
        return self.b(F.relu(self.a(x)))


# --- errors keep their type ------------------------------------------------------


class ShapeError(ValueError):
    pass


@nm.layer
@PF.parametric_function_api("checked")
def checked(x, n=3, fix_parameters=False):
    """A custom parametric function that raises its own error type.

    Args:
        x (~nnabla.Variable): 2-D input.
    """
    if x.ndim != 2:
        raise ShapeError("needs a 2-D input")
    w = nn.parameter.get_parameter_or_create("W", (x.shape[1], n))
    return F.affine(x, w)


def test_a_users_error_subclass_keeps_its_type_and_gets_the_module_name():
    layer = checked(name="mine")
    with pytest.raises(ShapeError, match=r"^Checked 'mine': needs a 2-D input$"):
        layer(nn.Variable((1, 2, 3)))


def test_pf_errors_of_builtin_types_are_still_named_value_errors():
    with pytest.raises(ValueError, match="Linear 'fc'"):
        nm.Linear(3, 2, name="fc")(nn.Variable((1, 2)))


# --- forked workers ------------------------------------------------------------------


def test_a_process_forked_while_another_thread_is_in_a_module_call_can_call_modules():
    inside, release = threading.Event(), threading.Event()

    class Slow(nm.Module):
        def __init__(self):
            self.fc = nm.Linear(2, 2)

        def __call__(self, x):
            inside.set()
            release.wait(30)
            return self.fc(x)

    slow, fast = Slow(name="slow"), nm.Linear(2, 3, name="fast")
    scope_outside = nn.parameter.current_scope
    worker = threading.Thread(target=slow, args=(nn.Variable((1, 2)),))
    worker.start()
    assert inside.wait(30)
    try:
        pid = os.fork()
        if pid == 0:  # the child: one module call, then report through the exit status
            code = 1
            try:
                y = fast(nn.Variable((1, 2)))
                ok = (y.shape == (1, 3) and "fast/affine/W" in nn.get_parameters()
                      and nn.parameter.current_scope is not slow._module_state.scope)
                code = 0 if ok else 2
            finally:
                os._exit(code)
        deadline = 60
        for _ in range(deadline * 10):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            threading.Event().wait(0.1)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung at its first module call")
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        release.set()
        worker.join(30)
    assert nn.parameter.current_scope is scope_outside


# --- frozen holds -------------------------------------------------------------------


def _frozen_linear(tmp_path):
    fc = nm.Linear(4, 4, name="fc")
    fc(nn.Variable((1, 4)))
    nn.save_parameters(str(tmp_path / "all.h5"))  # NNabla's own file: need_grad=True
    return fc.freeze()


@pytest.mark.parametrize("how", ["nn.load_parameters", "PF code by name"])
def test_freeze_holds_when_nnabla_sets_need_grad_back(tmp_path, how):
    fc = _frozen_linear(tmp_path)
    if how == "nn.load_parameters":
        nn.load_parameters(str(tmp_path / "all.h5"))
    else:
        with nn.parameter_scope("fc"):
            PF.affine(nn.Variable((1, 4)), 4)  # get_parameter_or_create(need_grad=True)
    assert list(fc.get_parameters()) == []
    assert [p.need_grad for p in fc.get_parameters(grad_only=False).values()] == [False, False]
    assert [p.need_grad for p in nn.get_parameters(grad_only=False).values()] == [False, False]
    assert list(fc.unfreeze().get_parameters()) == ["affine/W", "affine/b"]


def test_unfreeze_holds_when_nnabla_loads_a_file_saved_while_frozen(tmp_path):
    fc = _frozen_linear(tmp_path)
    nn.save_parameters(str(tmp_path / "frozen.h5"))  # NNabla's file: need_grad=False
    fc.unfreeze()
    nn.load_parameters(str(tmp_path / "frozen.h5"))
    assert list(fc.get_parameters()) == ["affine/W", "affine/b"]  # trained again
    fc.freeze()
    nn.load_parameters(str(tmp_path / "all.h5"))  # saved unfrozen: need_grad=True
    assert list(fc.get_parameters()) == []


class PFCode(nm.Module):
    """PF code in ``__call__``: its keys are known at its first call."""

    def __call__(self, x):
        return PF.batch_normalization(PF.affine(x, 3, name="fc"), name="bn")


def test_a_frozen_modules_file_does_not_freeze_the_module_it_is_loaded_into(tmp_path):
    trained = PFCode(name="trained")
    trained(nn.Variable((2, 4)))
    trained.freeze().save_parameters(str(tmp_path / "frozen.h5"))
    fresh = PFCode(name="fresh")
    fresh.load_parameters(str(tmp_path / "frozen.h5"))
    before_call = list(fresh.get_parameters())  # what a solver set up before the graph takes
    fresh(nn.Variable((2, 4)))
    assert before_call == list(fresh.get_parameters()) == [
        "fc/affine/W", "fc/affine/b", "bn/bn/beta", "bn/bn/gamma"]
    assert list(trained.get_parameters()) == []  # the source stays frozen


def test_a_module_frozen_before_its_first_call_is_frozen_as_one_frozen_after_it(tmp_path):
    # docs/concepts.md, rule 10 and Order: the weights its first call creates are frozen,
    # listed by parameters(), and saved with the flag the code asked for, never the freeze.
    early = PFCode(name="early").freeze()
    early(nn.Variable((2, 4)))
    late = PFCode(name="late")
    late(nn.Variable((2, 4)))
    late.freeze()
    for model in (early, late):
        assert list(model.get_parameters()) == []
        assert [k for k, _ in model.named_parameters()] == [
            "fc/affine/W", "fc/affine/b", "bn/bn/beta", "bn/bn/gamma"]
        path = str(tmp_path / f"{model.prefix}.h5")
        model.save_parameters(path)
        flags = {k: flag for k, (_, flag) in nm.files.read_parameters(path).items()}
        assert flags == {"fc/affine/W": True, "fc/affine/b": True, "bn/bn/beta": True,
                         "bn/bn/gamma": True, "bn/bn/mean": False, "bn/bn/var": False}
    with nn.parameter_scope("early"):  # PF code reusing the weights by name: frozen holds
        PF.affine(nn.Variable((2, 4)), 3, name="fc")
    assert list(early.get_parameters()) == []


# --- copies list what their source lists, in its order ---------------------------------


@pytest.mark.parametrize("copy_with", ["clone", "deepcopy"])
def test_an_ema_copy_pairs_with_its_source_layer_by_layer_before_and_after_calls(copy_with):
    import copy

    model = TwoLayers(name="model")  # attribute order b, a; call order a, b
    x = nn.Variable((2, 4))
    model(x)
    ema = model.clone() if copy_with == "clone" else copy.deepcopy(model)
    for _ in range(2):
        model(x)  # the training graph, rebuilt each step: a call of the source only
        pairs = zip(ema.get_parameters(), model.get_parameters())
        assert all(target == source for target, source in pairs)
    ema(x)
    assert list(ema.get_parameters()) == list(model.get_parameters()) == [
        "b/affine/W", "b/affine/b", "a/affine/W", "a/affine/b"]  # the tree's order


class Normed(nm.Module):
    def __init__(self):
        self.a = nm.Linear(4, 4)
        self.bn = nm.BatchNormalization(4, 2)
        self.b = nm.Linear(4, 4)

    def __call__(self, x):
        return self.b(self.bn(self.a(x)))


@pytest.mark.parametrize("frozen", ["the target", "a layer of the source"])
def test_polyak_over_parameters_pairs_layer_with_layer_whatever_is_frozen(frozen):
    """PyTorch's target-network idiom: ``parameters()`` lists frozen weights too, as
    PyTorch's does, so freezing the target or part of the source pairs nothing wrong."""
    source = Normed(name="source")
    target = source.clone(name="target")
    (target if frozen == "the target" else source.a).freeze()
    keys = ["a/affine/W", "a/affine/b", "bn/bn/beta", "bn/bn/gamma", "b/affine/W", "b/affine/b"]
    assert [key for key, _ in target.named_parameters()] == keys  # never the running statistics
    assert [key for key, _ in source.named_parameters()] == keys
    for param in source.parameters():
        param.d += 1.0
    expected = {key: 0.5 * param.d + 0.5 * target.get_parameters(grad_only=False)[key].d
                for key, param in source.named_parameters()}
    for t, s in zip(target.parameters(), source.parameters()):
        t.d = 0.5 * s.d + 0.5 * t.d
    for key, param in target.named_parameters():
        np.testing.assert_array_equal(param.d, expected[key])
    frozen_one = target if frozen == "the target" else source
    assert list(frozen_one.parameters(grad_only=True)) == list(
        frozen_one.get_parameters().values())  # NNabla's filter, asked for


# --- nn.Variable attributes are parameters ---------------------------------------------


class Temperature(nm.Module):
    """SAC's learned temperature: a hand-made Variable beside a layer."""

    def __init__(self):
        self.fc = nm.Linear(2, 2)
        self.log_alpha = nn.Variable.from_numpy_array(np.full((1, 1), 0.5, np.float32),
                                                      need_grad=True)
        self.placeholder = nn.Variable((1, 2))  # need_grad=False: an input, not a parameter

    def __call__(self, x):
        self.last = self.fc(x) * F.exp(self.log_alpha)  # a graph output, not a parameter
        return self.last


class Agent(nm.Module):
    def __init__(self):
        self.temperature = Temperature()

    def __call__(self, x):
        return self.temperature(x)


KEYS = ["temperature/log_alpha", "temperature/fc/affine/W", "temperature/fc/affine/b"]


@pytest.mark.parametrize("first_call", [False, True])
def test_a_variable_attribute_is_listed_saved_loaded_and_frozen(tmp_path, first_call):
    agent = Agent(name="agent")
    if first_call:
        agent(nn.Variable((1, 2)))
    log_alpha = agent.temperature.log_alpha
    params = agent.get_parameters()
    assert list(params) == KEYS
    assert params["temperature/log_alpha"] is log_alpha
    assert nn.get_parameters()["agent/temperature/log_alpha"] is log_alpha
    assert list(agent.state_dict()) == KEYS
    agent.save_parameters(tmp_path / "agent.h5")
    log_alpha.d = 3.0
    agent.load_parameters(tmp_path / "agent.h5")
    assert agent.temperature.log_alpha is log_alpha and log_alpha.d.item() == 0.5
    agent.freeze()
    assert list(agent.get_parameters()) == [] and not log_alpha.need_grad
    agent.unfreeze()
    assert list(agent.get_parameters()) == KEYS


def test_a_solver_trains_a_variable_attribute():
    import nnabla.solvers as S

    agent = Agent(name="agent")
    solver = S.Sgd(0.1)
    solver.set_parameters(agent.get_parameters())  # before the graph is built
    loss = F.sum(agent(nn.Variable.from_numpy_array(np.ones((1, 2), np.float32))))
    solver.zero_grad()
    loss.forward()
    loss.backward()
    solver.update()
    assert agent.temperature.log_alpha.d.item() != 0.5


def test_a_copy_owns_its_variable_attribute():
    agent = Agent(name="agent")
    twin = agent.clone(name="twin")
    assert twin.temperature.log_alpha is not agent.temperature.log_alpha
    assert twin.get_parameters()["temperature/log_alpha"] is twin.temperature.log_alpha
    twin.temperature.log_alpha.d = 7.0
    assert agent.temperature.log_alpha.d.item() == 0.5


def test_a_variable_assigned_in_a_call_is_a_parameter_at_once():
    class Lazy(nm.Module):
        def __call__(self, x):
            self.w = nn.Variable.from_numpy_array(np.ones((x.shape[1], 3), np.float32),
                                                  need_grad=True)
            return F.affine(x, self.w)

    lazy = Lazy(name="lazy")
    lazy(nn.Variable((1, 2)))
    assert list(lazy.get_parameters()) == ["w"]
    assert nn.get_parameters()["lazy/w"] is lazy.w


def test_a_parameter_attribute_cannot_become_something_else():
    agent = Agent(name="agent")
    message = r"Temperature 'agent/temperature': 'log_alpha' is a parameter"
    with pytest.raises(TypeError, match=message):
        agent.temperature.log_alpha = 0.5


# --- modules built in a call ---------------------------------------------------------------


class Block(nm.Module):
    def __init__(self):
        self.fc = nm.Linear(4, 4)

    def __call__(self, x):
        return self.fc(x)


class BuildsInCall(nm.Module):
    """Builds a module with a child inside its call, with a name=, without holding it."""

    def __call__(self, x):
        return Block(name="block")(x)


def test_a_module_with_children_built_in_a_call_is_the_callers(tmp_path):
    net = BuildsInCall(name="net")
    net(nn.Variable((1, 4)))
    assert list(nn.get_parameters()) == ["net/block/fc/affine/W", "net/block/fc/affine/b"]
    assert list(net.get_parameters()) == ["block/fc/affine/W", "block/fc/affine/b"]
    net.save_parameters(tmp_path / "net.h5")
    assert list(nm.files.read_parameters(tmp_path / "net.h5")) == list(net.get_parameters())
    net.freeze()
    assert [p.need_grad for p in nn.get_parameters(grad_only=False).values()] == [False, False]
    net(nn.Variable((1, 4)))  # rebuilt frozen: the new temporary's weights stay frozen
    assert list(net.get_parameters()) == []


# --- a trained model held by another takes its weights along ---------------------------------


class Backbone(nm.Module):
    def __init__(self):
        self.fc = nm.Linear(4, 8)
        self.bn = nm.BatchNormalization(8)

    def __call__(self, x):
        return F.relu(self.bn(self.fc(x)))


class WithHead(nm.Module):
    def __init__(self, backbone):
        self.backbone = backbone
        self.head = nm.Linear(8, 2)

    def __call__(self, x):
        return self.head(self.backbone(x))


def test_holding_a_trained_model_moves_its_weights_the_same_variables():
    import nnabla.solvers as S

    pretrained = Backbone()
    x = nn.Variable.from_numpy_array(np.ones((2, 4), np.float32))
    old_graph = pretrained(x)
    weights = pretrained.get_parameters(grad_only=False)
    solver = S.Sgd(0.1)
    solver.set_parameters(pretrained.get_parameters())
    pretrained.bn.freeze()
    model = WithHead(pretrained)  # the documented recipe: hold the whole pretrained model
    assert pretrained.prefix == "with_head/backbone"
    moved = model.backbone.get_parameters(grad_only=False)
    assert list(moved) == list(weights) and all(moved[k] is weights[k] for k in weights)
    assert list(model.get_parameters()) == [
        "backbone/fc/affine/W", "backbone/fc/affine/b", "head/affine/W", "head/affine/b"]
    assert sorted(nn.get_parameters(grad_only=False)) == sorted(
        "with_head/" + key for key in model.get_parameters(grad_only=False))
    model(x).forward()
    old_graph.forward()  # graphs built before the move read the same arrays
    assert model.backbone.get_parameters()["fc/affine/W"] is weights["fc/affine/W"]


def test_a_trained_model_is_held_by_a_new_root_under_the_name_of_a_dead_one():
    # docs/concepts.md: an automatic name is free again once its root is gone, and a
    # trained model takes its weights along into the model that holds it.
    def build():
        pretrained = Backbone()
        pretrained(nn.Variable((2, 4)))
        model = WithHead(pretrained)
        model(nn.Variable((2, 4)))
        return model

    first = build()
    del first  # its entries stay in the registry, stale, until the name is used again
    second = build()
    assert second.prefix == "with_head"
    assert sorted(nn.get_parameters(grad_only=False)) == sorted(
        "with_head/" + key for key in second.get_parameters(grad_only=False))


def test_a_layer_first_run_alone_then_put_in_a_list_is_held_with_its_weights():
    class Grow(nm.Module):
        def __init__(self):
            self.layers = []

        def run(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    nets = [Grow(name="g1"), Grow(name="g2")]
    for net in nets:
        net.layers.append(nm.Linear(4, 4))
        net.run(nn.Variable((1, 4)))  # a method, not __call__: the layer runs as a root
    first = [net.layers[0].get_parameters()["affine/W"] for net in nets]
    assert first[0] is not first[1]
    assert [list(net.get_parameters()) for net in nets] == [
        ["layers/0/affine/W", "layers/0/affine/b"]] * 2
    assert [net.get_parameters()["layers/0/affine/W"] for net in nets] == first


# --- places in plain lists and dicts -----------------------------------------------------------


class Stack(nm.Module):
    def __init__(self):
        self.layers = [nm.Linear(4, 4), nm.Linear(4, 4)]
        self.heads = {"a": nm.Linear(4, 2), "b": nm.Linear(4, 2)}

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.heads["a"](x) + self.heads["b"](x)


@pytest.mark.parametrize("swap", ["list", "dict"])
def test_swapping_trained_modules_in_a_plain_list_or_dict_is_refused_as_on_attributes(swap):
    stack = Stack(name="stack")
    stack(nn.Variable((1, 4)))
    if swap == "list":
        stack.layers.reverse()
    else:
        stack.heads["a"], stack.heads["b"] = stack.heads["b"], stack.heads["a"]
    with pytest.raises(ValueError, match="cannot change places in its model"):
        stack.get_parameters()
    with pytest.raises(ValueError, match="cannot change places in its model"):
        stack.state_dict()


def test_modules_moved_in_a_plain_list_before_they_have_weights_are_named_by_their_places():
    stack = Stack(name="stack")
    first, second = stack.layers
    stack.layers.reverse()
    stack(nn.Variable((1, 4)))
    assert (second.prefix, first.prefix) == ("stack/layers/0", "stack/layers/1")
    assert stack.state_dict().keys() == stack.get_parameters(grad_only=False).keys()
    assert stack.get_parameters()["layers/0/affine/W"] is second.get_parameters()["affine/W"]


class Mixed(nm.Module):
    """A layer given its sizes, and PF code of its own in ``__call__``."""

    def __init__(self):
        self.fc = nm.Linear(3, 4)

    def __call__(self, x):
        return PF.affine(F.relu(self.fc(x)), 2, name="out")


@pytest.mark.parametrize("strict", [True, False])
def test_a_model_with_layers_and_pf_code_of_its_own_takes_a_load_before_its_first_call(
        tmp_path, strict):
    x = nn.Variable.from_numpy_array(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    source = Mixed(name="source")
    expected = source(x)
    expected.forward()
    path = str(tmp_path / "mixed.h5")
    source.save_parameters(path)
    fresh = Mixed(name="fresh")
    assert fresh.load_parameters(path, strict=strict) == ([], [], [])
    y = fresh(x)
    y.forward()
    np.testing.assert_array_equal(y.d, expected.d)
    assert list(fresh.state_dict()) == list(source.state_dict())


def test_a_strict_load_of_a_file_without_what_the_first_call_creates_fails_there(tmp_path):
    source = Mixed(name="source")  # never called: its file lacks what its own PF code makes
    path = str(tmp_path / "early.h5")
    source.save_parameters(path)
    fresh = Mixed(name="fresh")
    fc_before = fresh.state_dict()["fc/affine/W"]
    fresh.load_parameters(path)
    with pytest.raises(nm.checkpoint.CheckpointError, match="out/affine/W"):
        fresh(nn.Variable((2, 3)))
    np.testing.assert_array_equal(fresh.state_dict()["fc/affine/W"], fc_before)  # undone
    lenient = Mixed(name="lenient")
    lenient.load_parameters(path, strict=False)
    lenient(nn.Variable((2, 3)))
    np.testing.assert_array_equal(lenient.state_dict()["fc/affine/W"],
                                  source.state_dict()["fc/affine/W"])


def test_two_loads_before_the_first_call_are_undone_together(tmp_path):
    source = Mixed(name="source")  # never called: its files lack what its PF code makes
    paths = [str(tmp_path / f"early{i}.h5") for i in range(2)]
    for value, path in zip((1.0, 2.0), paths):
        for param in source.get_parameters(grad_only=False).values():
            param.d = value
        source.save_parameters(path)
    fresh = Mixed(name="fresh")
    before = fresh.state_dict()
    for path in paths:
        fresh.load_parameters(path)
    assert np.all(fresh.state_dict()["fc/affine/W"] == 2.0)
    with pytest.raises(nm.checkpoint.CheckpointError, match="out/affine/W"):
        fresh(nn.Variable((2, 3)))
    after = fresh.state_dict()
    assert all(np.array_equal(after[key], before[key]) for key in before)


def test_a_lenient_load_after_a_strict_one_before_the_first_call_only_warns_of_its_extra_keys():
    # docs/checkpoints.md, strict=False: what does not fit is reported, not an error, as it
    # is when the two loads come after the first call.
    source = Mixed(name="source")
    source(nn.Variable((2, 3)))
    state = source.state_dict()
    fresh = Mixed(name="fresh")
    fresh.load_state_dict(state)
    fresh.load_state_dict({**state, "out/affine/extra": np.zeros(2)}, strict=False)
    with pytest.warns(UserWarning, match="out/affine/extra"):
        fresh(nn.Variable((2, 3)))
    assert_same_arrays(fresh.state_dict(), state)


def test_repeated_loads_before_the_first_call_keep_one_copy_of_the_old_values():
    source = Mixed(name="source")
    source(nn.Variable((2, 3)))
    state = source.state_dict()
    fresh = Mixed(name="fresh")
    for _ in range(3):
        fresh.load_state_dict(state)
    (pending,) = fresh._module_state.pending  # one check for the three loads
    copies = [action.param for action in pending.undo if hasattr(action, "param")]
    params = fresh.get_parameters(grad_only=False).values()  # fc's, and out's placed at first
    assert sorted(map(id, copies)) == sorted(map(id, params))  # one old copy each, not three
    fresh(nn.Variable((2, 3)))
    assert fresh._module_state.pending is None
    assert_same_arrays(fresh.state_dict(), state)


def test_a_load_into_a_model_whose_code_has_not_run_is_undone_exactly_for_large_weights():
    class Wide(nm.Module):  # a weight of 90000 values: swapped with the load's buffer in parts
        def __init__(self):
            self.fc = nm.Linear(300, 300)

        def __call__(self, x):
            return PF.affine(self.fc(x), 2, name="out")

    source = Wide(name="source")
    state = source.state_dict()  # saved before its first call: no out/affine/*
    state["fc/affine/W"] = np.arange(90000, dtype=np.float32).reshape(300, 300)
    fresh = Wide(name="fresh")
    before = fresh.state_dict()
    fresh.load_state_dict(state)
    assert_same_arrays(fresh.state_dict(), state)
    with pytest.raises(nm.checkpoint.CheckpointError, match="out/affine/W"):
        fresh(nn.Variable((1, 300)))
    assert_same_arrays(fresh.state_dict(), before)


def test_layers_added_after_a_load_before_the_first_call_are_not_the_files_to_check():
    source = Mixed(name="source")
    source(nn.Variable((2, 3)))
    model = Mixed(name="model")
    model.load_state_dict(source.state_dict())
    model.extra = nm.ModuleList([nm.Linear(3, 3)])  # surgery between the load and the call
    model(nn.Variable((2, 3)))  # checked: the file fits what the model's own code made
    assert list(model.get_parameters()) == [
        "out/affine/W", "out/affine/b", "fc/affine/W", "fc/affine/b",
        "extra/0/affine/W", "extra/0/affine/b"]


def test_a_load_before_the_first_call_that_the_call_does_not_use_is_undone_there(tmp_path):
    x = nn.Variable((2, 3))
    source = Mixed(name="source")
    source(x)
    state = source.state_dict()
    state["extra/affine/W"] = np.ones((3, 4), np.float32)  # no code of Mixed creates it
    fresh = Mixed(name="fresh")
    fc_before = fresh.state_dict()["fc/affine/W"]
    fresh.load_state_dict(state)  # checked when the first call shows what the model uses
    with pytest.raises(nm.checkpoint.CheckpointError, match="extra/affine/W"):
        fresh(x)
    np.testing.assert_array_equal(fresh.state_dict()["fc/affine/W"], fc_before)
    assert "fresh/extra/affine/W" not in nn.get_parameters(grad_only=False)


class PFOnly(nm.Module):
    def __call__(self, x):
        return PF.affine(F.relu(PF.affine(x, 4, name="fc1")), 2, name="fc2")


@pytest.mark.parametrize("cls", [PFOnly, Mixed])
def test_a_model_loaded_before_its_first_call_brings_the_values_into_the_model_holding_it(
        tmp_path, cls):
    x = nn.Variable.from_numpy_array(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    source = cls(name="source")
    expected = source(x)
    expected.forward()
    path = str(tmp_path / "pretrained.h5")
    source.save_parameters(path)

    class Holder(nm.Module):
        def __init__(self, backbone):
            self.backbone = backbone

        def __call__(self, x):
            return self.backbone(x)

    pretrained = cls()
    pretrained.load_parameters(path)
    holder = Holder(pretrained, name="holder")
    y = holder(x)
    y.forward()
    np.testing.assert_array_equal(y.d, expected.d)


# --- surgery on containers --------------------------------------------------------------------


def _trained_stack():
    seq = nm.Sequential(nm.Linear(4, 4), F.relu, nm.Linear(4, 4), nm.Linear(4, 2), name="seq")
    seq(nn.Variable((1, 4)))
    return seq, seq.get_parameters()


def test_a_layer_inserted_into_a_trained_sequential_leaves_the_others_weights_in_place():
    seq, before = _trained_stack()
    new = nm.Linear(4, 4)
    seq.insert(1, new)
    assert list(seq) == [seq["0"], new, F.relu, seq["2"], seq["3"]]  # call order
    x = nn.Variable.from_numpy_array(np.ones((1, 4), np.float32))
    y = seq(x)
    expected = seq["3"](seq["2"](F.relu(new(seq["0"](x)))))
    y.forward()
    expected.forward()
    assert np.array_equal(y.d, expected.d)
    after = seq.get_parameters()
    assert all(after[key] is before[key] for key in before)
    assert set(after) - set(before) == {"4/affine/W", "4/affine/b"}


def test_item_assignment_and_deletion_on_containers():
    seq, before = _trained_stack()
    seq[2] = nm.Linear(4, 4)  # replaced: fresh weights at its key
    assert seq.get_parameters()["2/affine/W"] is not before["2/affine/W"]
    del seq[0]
    assert list(seq.get_parameters()) == ["2/affine/W", "2/affine/b", "3/affine/W", "3/affine/b"]
    layers = nm.ModuleList([nm.Linear(2, 2), nm.Linear(2, 2)], name="layers")
    kept = layers[1].get_parameters()["affine/W"]
    del layers[0]
    layers.insert(0, nm.Linear(2, 2))
    assert layers.get_parameters()["1/affine/W"] is kept
    assert len(layers) == 2 and layers[1].get_parameters()["affine/W"] is kept


def test_a_slice_lists_and_freezes_its_items_under_the_originals_keys():
    seq, before = _trained_stack()
    features = seq[:3]
    assert list(features.get_parameters()) == ["0/affine/W", "0/affine/b", "2/affine/W",
                                               "2/affine/b"]
    assert sum(p.size for p in features.parameters()) == 40
    features.freeze()
    assert list(seq.get_parameters()) == ["3/affine/W", "3/affine/b"]
    assert sum(p.size for p in features.parameters()) == 40  # PyTorch's: frozen ones too
    features.unfreeze()
    assert seq.get_parameters().keys() == before.keys()


@pytest.mark.parametrize("trained", [False, True])
@pytest.mark.parametrize("name", [None, "old"])
def test_a_slice_of_a_root_sequential_held_by_a_model_is_refused_as_any_slice(trained, name):
    """The slice's model gets none of the original's weights, neither those it runs nor
    those it left out: holding a view is refused, as for a slice of a model's child."""
    old = nm.Sequential(nm.Linear(4, 4), F.relu, nm.Linear(4, 2), name=name)
    if trained:
        old(nn.Variable((1, 4)))
    prefix, keys = old.prefix, list(old.get_parameters())

    class New(nm.Module):
        def __init__(self):
            self.features = old[:2]
            self.head = nm.Linear(4, 3)

        def __call__(self, x):
            return self.head(self.features(x))

    new = New(name="new")
    with pytest.raises(ValueError, match="is a slice of a Sequential"):
        new.get_parameters()
    assert old.prefix == prefix and list(old.get_parameters()) == keys


# --- what NNabla's tools create beside a module's weights is the module's ------------------------


class ConvBN(nm.Module):
    def __init__(self):
        self.conv = nm.Conv2d(3, 4, 3, pad=1)
        self.bn = nm.BatchNorm2d(4)

    def __call__(self, x):
        return F.relu(self.bn(self.conv(x)))


def _folded(net, x):
    from nnabla.experimental.graph_converters import (
        BatchNormalizationFoldingModifier,
        GraphConverter,
    )

    return GraphConverter([BatchNormalizationFoldingModifier()]).convert([net.eval()(x)])[0]


def test_batch_norm_folding_weights_are_listed_saved_frozen_and_reloaded(tmp_path):
    x = nn.Variable.from_numpy_array(np.random.RandomState(0).rand(2, 3, 5, 5).astype(np.float32))
    net = ConvBN(name="net")
    folded = _folded(net, x)
    assert list(net.conv.get_parameters()) == [
        "conv/W", "conv/b", "conv/w-folded", "conv/b-folded"]
    for key in ("conv/w-folded", "conv/b-folded"):  # fine-tuning the folded graph
        net.conv.get_parameters()[key].d += 0.25
    folded.forward()
    tuned = folded.d.copy()
    net.save_parameters(tmp_path / "folded.h5")
    net.freeze()
    assert net.get_parameters() == {}

    nn.clear_parameters()
    again = ConvBN(name="net")
    refolded = _folded(again, x)  # build and fold, then load: the folded weights are loaded too
    again.load_parameters(tmp_path / "folded.h5")
    refolded.forward()
    assert np.array_equal(refolded.d, tuned)


# --- methods run in the module's scope --------------------------------------------------------


class VAE(nm.Module):
    def __init__(self):
        self.enc = nm.Linear(4, 4)

    def encode(self, x):  # PF code in a method other than __call__
        return PF.affine(F.relu(self.enc(x)), 2, name="mu")

    def __call__(self, x):
        return self.encode(x)


def test_pf_code_in_a_method_lands_under_the_prefix_as_in_a_call():
    vae = VAE(name="vae")
    x = nn.Variable.from_numpy_array(np.ones((1, 4), np.float32))
    through_method, through_call = vae.encode(x), vae(x)
    F.sink(through_method, through_call).forward()
    assert np.array_equal(through_method.d, through_call.d)
    assert sorted(nn.get_parameters()) == [
        "vae/enc/affine/W", "vae/enc/affine/b", "vae/mu/affine/W", "vae/mu/affine/b"]
    assert sorted(vae.get_parameters()) == ["enc/affine/W", "enc/affine/b", "mu/affine/W",
                                            "mu/affine/b"]
    other = VAE(name="other")
    other.encode(x)  # its own weights, not vae's
    assert other.get_parameters()["mu/affine/W"] is not vae.get_parameters()["mu/affine/W"]


def test_forward_called_directly_runs_in_the_scope():
    class Forward(nm.Module):
        def forward(self, x):
            return PF.affine(x, 2, name="fc")

    model = Forward(name="fwd")
    model.forward(nn.Variable((1, 3)))
    assert list(nn.get_parameters()) == ["fwd/fc/affine/W", "fwd/fc/affine/b"]
    assert list(model.get_parameters()) == ["fc/affine/W", "fc/affine/b"]


def test_a_method_runs_no_forward_hook_and_a_helper_of_init_no_scope():
    class Helper(nm.Module):
        def __init__(self):
            self.layers = self.make(2)  # a method called while the module is built

        def make(self, n):
            return [nm.Linear(3, 3) for _ in range(n)]

        def __call__(self, x):
            return self.layers[1](self.layers[0](x))

    model = Helper(name="helper")
    seen = []
    with model.register_forward_hook(lambda m, a, k, y: seen.append(m.prefix)):
        model.make(1)
        model(nn.Variable((1, 3)))
    assert seen == ["helper"]
    assert list(model.get_parameters()) == [
        "layers/0/affine/W", "layers/0/affine/b", "layers/1/affine/W", "layers/1/affine/b"]


def test_a_sequential_lists_its_items_in_the_order_it_calls_them_after_insert():
    seq = nm.Sequential(nm.Linear(4, 4), nm.Linear(4, 4), name="s")
    seq.get_parameters()
    seq.insert(0, nm.Linear(4, 8))
    shapes = [p.shape for k, p in seq.get_parameters().items() if k.endswith("/W")]
    assert shapes == [(4, 8), (4, 4), (4, 4)]
    assert [name for name, _ in seq.named_modules()] == ["", "2", "0", "1"]


def test_a_parameter_like_variable_in_a_list_is_said_not_to_be_a_parameter():
    class Gains(nm.Module):
        def __init__(self):
            self.gains = [nn.Variable.from_numpy_array(np.ones((1, 3)), need_grad=True)]

        def __call__(self, x):
            return x * self.gains[0]

    with pytest.warns(UserWarning, match=r"'gains/0' holds an nn.Variable with need_grad=True"):
        Gains(name="gains").get_parameters()


def test_a_load_into_a_model_that_runs_no_code_of_its_own_keeps_no_old_values():
    """Only a class with a ``__call__`` or ``forward`` of its own may create keys at its
    first call: a load into one that has none, or into a container, is checked at once
    and keeps no copy of the values it replaced (docs/checkpoints.md)."""

    class Holder(nm.Module):  # children only: used by calling them
        def __init__(self):
            self.fc = nm.Linear(3, 4)
            self.items = nm.ModuleList([nm.Linear(4, 2)])

    class Caller(Holder):  # the same tree, with code that may run PF functions
        def forward(self, x):
            return self.items[0](self.fc(x))

    for cls, kept in [(Holder, False), (Caller, True)]:
        source, fresh = cls(name=f"source_{cls.__name__}"), cls(name=f"fresh_{cls.__name__}")
        for value in source.get_parameters().values():
            value.d = np.full(value.shape, 7.0)
        fresh.load_state_dict(source.state_dict())
        assert bool(fresh._module_state.pending) is kept, cls.__name__
        assert_same_arrays(fresh.state_dict(), source.state_dict())
    for items, kept in [((), False), ((lambda x: PF.affine(x, 2, name="head"),), True)]:
        stack = nm.Sequential(nm.Linear(3, 4), *items)
        stack.load_state_dict(nm.Sequential(nm.Linear(3, 4)).state_dict())
        assert bool(stack._module_state.pending) is kept  # a plain callable may run PF code


class _Backbone(nm.Module):
    def __init__(self):
        self.fc = nm.Linear(3, 2)

    def __call__(self, x):
        return PF.affine(self.fc(x), 2, name="head")


class _Holder(nm.Module):
    def __init__(self, backbone):
        self.backbone = backbone

    def __call__(self, x):
        return self.backbone(x)


def test_values_nn_load_parameters_left_under_a_module_it_leaves_are_named_in_a_warning(
    tmp_path,
):
    """PF's habit, ``nn.load_parameters`` then build, before a model holds the module:
    the entries are not the module's (rule 3), so they stay; a warning says so and how
    to load instead, and its own ``load_parameters`` brings the values along."""
    source = _Backbone()
    x = nn.Variable.from_numpy_array(np.ones((1, 3), np.float32))
    source(x)
    for value in source.get_parameters().values():
        value.d = np.random.default_rng(0).normal(size=value.shape)
    saved = source.state_dict()
    source.save_parameters(tmp_path / "backbone.h5")
    nn.save_parameters(str(tmp_path / "registry.h5"), source.get_parameters(absolute=True))
    del source
    nn.clear_parameters()
    backbone = _Backbone()  # the same automatic name as the source's
    nn.load_parameters(str(tmp_path / "registry.h5"))
    with pytest.warns(UserWarning, match=r"leaves values nn.load_parameters put under "
                      r"'_backbone' \(.*fc/affine/W.*load_parameters\(\) before a model holds it"):
        _Holder(backbone)
    backbone = _Backbone()
    backbone.load_parameters(tmp_path / "backbone.h5")
    model = _Holder(backbone)
    model(x)
    assert_same_arrays(backbone.state_dict(), saved)


def test_layers_built_in_a_models_construction_leave_nothing_to_warn_about(recwarn):
    """Entries PF code made under a module's first name are no load's: nothing is named."""
    PF.affine(nn.Variable((1, 3)), 2, name="linear")  # PF code's entries: 'linear/affine/*'
    model = _Holder(nm.Linear(3, 2))  # built for the model: first named 'linear' alone
    model.head = nm.Linear(2, 2)  # built after the model: the same
    assert not [w for w in recwarn if "leaves values" in str(w.message)]
