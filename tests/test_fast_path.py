"""The layers' fast path builds what PF builds, bit for bit, and steps aside when PF would differ.

A layer whose PF function is ``affine``, ``convolution``, ``deconvolution``,
``batch_normalization`` or ``embed`` builds its graph directly once its
parameters exist (see ``nnabla_modules/layers/_fast.py``). Every check here
builds the same model twice, with plain PF code and with the module, calls
it a second time (the call the fast path takes) and compares everything: the
functions of the graph in order with their arguments, contexts and inputs
(shapes, ``need_grad``, names), the outputs, the gradients, the registry, and
the module's bookkeeping against the same module with the fast path off.
"""

import nnabla as nn
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from equivalence import assert_equivalent, run
from nnabla.ext_utils import get_extension_context
from test_all_layers import CASES as ALL_LAYERS
from test_all_layers import _pf as all_layers_pf
from test_experimental_classes import CASES as CLASS_CASES
from test_experimental_classes import GRAPH_ONLY

import nnabla_modules as nm
from nnabla_modules.layers import _fast

# Every class of the five families (test_experimental_classes.py), and a few more arguments.
CASES = {
    **CLASS_CASES,
    "Affine-fix_parameters": (nm.Affine, (6, 3), {"fix_parameters": True}, [(2, 6)],
                              lambda x, **k: PF.affine(x, 3, fix_parameters=True, **k)),
    "Conv2d-no-bias-fixed": (nm.Conv2d, (3, 2, 3), {"with_bias": False, "fix_parameters": True},
                             [(2, 3, 5, 5)],
                             lambda x, **k: PF.convolution(x, 2, (3, 3), with_bias=False,
                                                           fix_parameters=True, **k)),
    "BatchNorm2d-fixed": (nm.BatchNorm2d, (3,), {"fix_parameters": True, "eps": 1e-3},
                          [(4, 3, 2, 2)],
                          lambda x, **k: PF.batch_normalization(x, fix_parameters=True,
                                                                eps=1e-3, **k)),
}  # fmt: skip
BN_CASES = {name for name, case in CASES.items() if issubclass(case[0], nm.BatchNormalization)}
MODES = ("train", "eval", "test", "no_grad", "auto_forward")


@pytest.fixture
def fast_builds(monkeypatch):
    """Counts the calls the fast path built (a list: one entry per fast build)."""
    built = []
    original = _fast.Plan.build

    def counting(plan, layer, x, inference):
        result = original(plan, layer, x, inference)
        if result is not None:
            built.append(type(layer).__name__)
        return result

    monkeypatch.setattr(_fast.Plan, "build", counting)
    return built


def graph(outputs):
    """Every function reachable from ``outputs``, in order: kind, arguments, context, inputs."""
    found = []

    def visit(f):
        inputs = [(v.shape, v.need_grad, v.name, v.persistent) for v in f.inputs]
        found.append((f.info.type_name, f.info.args, str(f.context), inputs))

    for y in outputs if isinstance(outputs, tuple) else (outputs,):
        y.visit(visit)
    return found


class Net(nm.Module):
    """A root holding the layer as ``layer``: PF code's ``name="layer"`` under scope ``net``."""

    def __init__(self, layer):
        self.layer = layer

    def __call__(self, *args, **kwargs):
        return self.layer(*args, **kwargs)


def _pf_args(case, mode):
    return {"batch_stat": False} if case in BN_CASES and mode in ("eval", "test") else {}


def _in_mode(mode, build):
    if mode == "no_grad":
        with nn.no_grad():
            return build()
    if mode == "auto_forward":
        with nn.auto_forward():
            return build()
    return build()


def _twice(call, graphs):
    """Calls ``call()`` twice (the second call is the fast one) and keeps its graph."""
    call()
    y = call()
    graphs.append(graph(y))
    return y


def build_pf(case, mode, graphs):
    cls, args, kwargs, shapes, pf_call = CASES[case]

    def build(*xs):
        def call():
            with nn.parameter_scope("net"):
                return pf_call(*xs, name="layer", **_pf_args(case, mode))

        return _in_mode(mode, lambda: _twice(call, graphs))

    return build


def build_module(case, mode, graphs, modules):
    cls, args, kwargs, shapes, pf_call = CASES[case]

    def build(*xs):
        net = Net(cls(*args, **kwargs), name="net")
        modules.append(net)
        if mode == "eval":
            net.eval()
        test = {"test": True} if mode == "test" else {}
        return _in_mode(mode, lambda: _twice(lambda: net(*xs, **test), graphs))

    return build


def _bookkeeping(net):
    """What the module owns and the need_grad it asked for, and the registry's flags."""
    params = net.get_parameters(grad_only=False)
    claims = dict(net.layer._module_state.claims)
    return list(params), [p.need_grad for p in params.values()], claims


# NNabla's CPU convolution computes no channel_last: graphs only, not under auto_forward.
RUNS = [(case, mode) for case in sorted(CASES) for mode in MODES
        if not (case in GRAPH_ONLY and mode == "auto_forward")]


@pytest.mark.parametrize(("case", "mode"), RUNS)
def test_fast_path_builds_what_pf_builds(case, mode, fast_builds, monkeypatch):
    shapes = CASES[case][3]
    forward = case not in GRAPH_ONLY
    backward = forward and mode != "no_grad"
    pf_graphs, fast_graphs, plain_graphs, fast_nets, plain_nets = [], [], [], [], []
    expected = run(build_pf(case, mode, pf_graphs), shapes, forward=forward, backward=backward)
    got = run(build_module(case, mode, fast_graphs, fast_nets), shapes, forward=forward,
              backward=backward)
    assert fast_builds == [CASES[case][0].__name__]  # the second call, and only it
    assert_equivalent(expected, got)
    assert fast_graphs == pf_graphs
    # The same module with the fast path off: the same bookkeeping.
    monkeypatch.setattr(_fast, "ENABLED", False)
    run(build_module(case, mode, plain_graphs, plain_nets), shapes, forward=False)
    assert plain_graphs == pf_graphs
    assert _bookkeeping(fast_nets[0]) == _bookkeeping(plain_nets[0])


def _indices():
    return nn.Variable.from_numpy_array(np.array([[1, 0, 9], [3, 3, 2]], dtype=np.int32))


@pytest.mark.parametrize("mode", MODES)
def test_embed_fast_path_builds_what_pf_builds(mode, fast_builds):
    pf_graphs, fast_graphs = [], []

    def pf_code(_):
        idx = _indices()

        def call():
            with nn.parameter_scope("net"):
                return PF.embed(idx, 10, 4, name="layer")

        return _in_mode(mode, lambda: _twice(call, pf_graphs))

    def module_code(_):
        idx = _indices()
        net = Net(nm.Embed(10, 4), name="net")
        if mode == "eval":
            net.eval()
        test = {"test": True} if mode == "test" else {}
        return _in_mode(mode, lambda: _twice(lambda: net(idx, **test), fast_graphs))

    backward = mode != "no_grad"
    assert_equivalent(run(pf_code, [(1,)], backward=backward),
                      run(module_code, [(1,)], backward=backward))
    assert fast_builds == ["Embed"]
    assert fast_graphs == pf_graphs


@pytest.mark.parametrize("name", sorted(ALL_LAYERS))
def test_every_layer_called_twice_equals_pf_called_twice(name):
    """The wider table: layers that wrap a fast-path layer (apply_w) and all the others."""
    row = ALL_LAYERS[name]
    pf_graphs, module_graphs = [], []

    def pf_code(*xs):
        with nn.parameter_scope("net"):
            all_layers_pf(row, name="layer")(*xs)
            y = all_layers_pf(row, name="layer")(*xs)
        pf_graphs.append(graph(y))
        return y

    def module_code(*xs):
        args, kwargs = row["inputs"](xs)
        net = Net(row["module"](), name="net")
        net(*args, **kwargs)
        y = net(*args, **kwargs)
        module_graphs.append(graph(y))
        return y

    assert_equivalent(run(pf_code, row["shapes"]), run(module_code, row["shapes"]))
    assert module_graphs == pf_graphs


# --- where the fast path steps aside ------------------------------------------------------


def _conv_net():
    return Net(nm.Conv2d(3, 4, 3, pad=1), name="net")


def _pf_conv(x, **kwargs):
    with nn.parameter_scope("net"):
        return PF.convolution(x, 4, (3, 3), pad=(1, 1), name="layer", **kwargs)


def _x(shape=(2, 3, 5, 5), seed=0):
    data = np.random.RandomState(seed).randn(*shape).astype(np.float32)
    return nn.Variable.from_numpy_array(data, need_grad=True)


def _forward(y):
    y.forward()
    return y.d.copy()


def test_a_new_input_shape_goes_through_pf_then_is_fast_again(fast_builds):
    net = _conv_net()
    net(_x())
    y = net(_x((4, 3, 6, 6)))  # another batch and size: PF checks it
    assert fast_builds == []
    assert y.shape == _pf_conv(_x((4, 3, 6, 6))).shape
    net(_x((4, 3, 6, 6)))
    assert fast_builds == ["Conv2d"]


def test_an_input_with_other_channels_fails_as_before(fast_builds):
    net = _conv_net()
    net(_x())
    with pytest.raises(ValueError, match="Conv2d 'net/layer'.*4 channels"):
        net(_x((2, 4, 5, 5)))
    assert fast_builds == []


def test_a_changed_need_grad_in_the_registry_is_set_back_by_pf(fast_builds):
    net = _conv_net()
    net(_x())
    weight = nn.get_parameters()["net/layer/conv/W"]
    weight.need_grad = False  # PF's call sets the flag it asks for again
    y = net(_x())
    assert fast_builds == []
    assert weight.need_grad
    assert [v.need_grad for v in y.parent.inputs[1:]] == [True, True]
    net(_x())
    assert fast_builds == ["Conv2d"]


def test_fix_parameters_given_at_the_call_goes_through_pf(fast_builds):
    net = _conv_net()
    net(_x())
    y = net(_x(), fix_parameters=True)
    assert fast_builds == []
    assert [v.need_grad for v in y.parent.inputs[1:]] == [False, False]
    assert nn.get_parameters(grad_only=False)["net/layer/conv/W"].need_grad  # PF's rule


def test_a_replaced_registry_entry_is_used(fast_builds):
    net = _conv_net()
    x = _x()
    net(x)
    replacement = nn.Variable.from_numpy_array(np.full((4, 3, 3, 3), 0.5, np.float32),
                                               need_grad=True)
    with nn.parameter_scope("net/layer/conv"):
        nn.parameter.set_parameter("W", replacement)
    got = _forward(net(x))
    assert fast_builds == []
    assert np.array_equal(got, _forward(_pf_conv(x)))
    assert np.allclose(got[0, :, 2, 2], 0.5 * x.d[0, :, 1:4, 1:4].sum(), atol=1e-4)


def test_removed_parameters_are_created_again(fast_builds):
    net = _conv_net()
    x = _x()
    net(x)
    nn.clear_parameters()
    nn.seed(5)
    got = _forward(net(x))
    assert fast_builds == []
    assert list(net.get_parameters()) == ["layer/conv/W", "layer/conv/b"]
    nn.clear_parameters()
    nn.seed(5)
    assert np.array_equal(got, _forward(_pf_conv(x)))


def test_release_then_call_creates_fresh_weights(fast_builds):
    net = _conv_net()
    net(_x())
    old = nn.get_parameters()["net/layer/conv/W"]
    net.release()
    net(_x())
    assert fast_builds == []
    assert nn.get_parameters()["net/layer/conv/W"] is not old


def test_a_resized_registry_entry_fails_as_pf_does(fast_builds):
    net = _conv_net()
    net(_x())
    nn.get_parameters()["net/layer/conv/b"].reset_shape((5,), force=True)
    with pytest.raises(ValueError, match="Conv2d 'net/layer'.*size of existing parameter"):
        net(_x())
    assert fast_builds == []


def test_the_current_context_is_the_functions(fast_builds):
    net = _conv_net()
    x = _x()
    net(x)
    half = get_extension_context("cpu", type_config="half")
    with nn.context_scope(half):
        got = net(x)
        expected = _pf_conv(x)
    assert fast_builds == ["Conv2d"]
    assert str(got.parent.context) == str(expected.parent.context) == str(half)
    assert graph(got) == graph(expected)


def test_training_and_inference_each_build_their_own_graph(fast_builds):
    bn = Net(nm.BatchNorm2d(3), name="net")
    x = _x((4, 3, 2, 2))
    for _ in range(2):
        assert bn(x).parent.info.args["batch_stat"] is True
        assert bn(x, test=True).parent.info.args["batch_stat"] is False
        bn.eval()
        assert bn(x).parent.info.args["batch_stat"] is False
        bn.train()
    assert fast_builds == ["BatchNorm2d"] * 4


def test_arguments_given_at_the_call_go_through_pf(fast_builds):
    bn = Net(nm.BatchNorm2d(3), name="net")
    x = _x((4, 3, 2, 2))
    bn(x)
    assert bn(x, batch_stat=False).parent.info.args["batch_stat"] is False
    assert bn(x, eps=0.5).parent.info.args["eps"] == 0.5
    assert fast_builds == []


def test_a_frozen_module_gets_weights_without_gradient(fast_builds):
    net = _conv_net()
    x = _x()
    net(x)
    net(x)
    assert fast_builds == ["Conv2d"]
    net.freeze()
    for _ in range(2):
        y = net(x)
        assert [v.need_grad for v in y.parent.inputs[1:]] == [False, False]
        assert not any(p.need_grad for p in nn.get_parameters(grad_only=False).values())
    assert fast_builds == ["Conv2d"] * 3
    net.unfreeze()
    y = net(x)
    assert [v.need_grad for v in y.parent.inputs[1:]] == [True, True]
    assert all(p.need_grad for p in nn.get_parameters().values())
    assert fast_builds == ["Conv2d"] * 4


@pytest.mark.parametrize("case", sorted(CASES))
def test_frozen_layers_build_what_their_pf_calls_build(case, fast_builds, monkeypatch):
    """Frozen: PF's calls are observed (the flag set, then cleared); the fast path matches."""
    cls, args, kwargs, shapes, _ = CASES[case]
    forward = case not in GRAPH_ONLY

    def build(graphs, nets):
        def frozen_call(*xs):
            net = Net(cls(*args, **kwargs), name="net")
            net(*xs)
            net.freeze()
            nets.append(net)
            return _twice(lambda: net(*xs), graphs)

        return frozen_call

    fast_graphs, fast_nets, plain_graphs, plain_nets = [], [], [], []
    fast = run(build(fast_graphs, fast_nets), shapes, forward=forward)
    assert fast_builds == [cls.__name__] * 2
    monkeypatch.setattr(_fast, "ENABLED", False)
    plain = run(build(plain_graphs, plain_nets), shapes, forward=forward)
    assert_equivalent(plain, fast)
    assert fast_graphs == plain_graphs
    assert _bookkeeping(fast_nets[0]) == _bookkeeping(plain_nets[0])
    assert all(not need_grad for need_grad in _bookkeeping(fast_nets[0])[1])


@pytest.mark.parametrize("by_hand", [False, True])
def test_weights_shared_with_a_frozen_module_stay_frozen(by_hand, monkeypatch):
    """A module sharing a frozen module's entries by name: what PF's observed calls give."""

    def scenario():
        nn.clear_parameters()
        shared = nm.Conv2d(3, 4, 3, pad=1, name="shared")
        twin = nm.Conv2d(3, 4, 3, pad=1, name="shared")  # the same entries, by name
        x = _x()
        for _ in range(2):
            shared(x), twin(x)
        shared.freeze()
        if by_hand:
            nn.get_parameters(grad_only=False)["shared/conv/W"].need_grad = True
        y = twin(x)
        registry = nn.get_parameters(grad_only=False)
        return [v.need_grad for v in y.parent.inputs[1:]], [p.need_grad for p in registry.values()]

    fast = scenario()
    monkeypatch.setattr(_fast, "ENABLED", False)
    assert fast == scenario()
    assert fast[1] == [False, False]  # the registry stays frozen


def test_no_grad_gives_weights_without_gradient_and_leaves_the_registry(fast_builds):
    net = _conv_net()
    x = _x()
    net(x)
    with nn.no_grad():
        y = net(x)
    assert fast_builds == ["Conv2d"]
    assert [v.need_grad for v in y.parent.inputs[1:]] == [False, False]
    assert all(p.need_grad for p in nn.get_parameters().values())


def test_a_drop_in_layer_goes_through_pf(fast_builds, recwarn):
    """A name="" layer's PF calls are checked for sharing by its parent: PF's path."""
    conv = nm.Conv2d(3, 4, 3, name="")
    conv(_x())
    conv(_x())
    assert fast_builds == []


def test_pf_arguments_changed_after_a_call_go_through_pf(fast_builds):
    """The guard for code that changes a layer's PF arguments (as the reparameterizations do)."""
    net = _conv_net()
    net(_x())
    net.layer._pf_kwargs["apply_w"] = lambda w: w * 2
    y = net(_x())
    assert fast_builds == []
    assert [f[0] for f in graph(y)] == ["MulScalar", "Convolution"]
    net.layer._pf_kwargs["apply_w"] = None
    net(_x())  # through PF: the arguments differ from the plan's
    net(_x())
    assert fast_builds == ["Conv2d"]


def test_a_module_built_in_a_call_credits_its_caller_through_pf(fast_builds):
    class Outer(nm.Module):
        def __call__(self, x):
            inner = nm.Conv2d(3, 4, 3, name="inner")  # not held: the caller owns it too
            inner(x)
            return inner(x)

    outer = Outer(name="outer")
    outer(_x())
    assert fast_builds == []
    assert list(outer.get_parameters()) == ["inner/conv/W", "inner/conv/b"]


def test_a_copy_records_its_own_plan(fast_builds):
    net = _conv_net()
    x = _x()
    net(x)
    twin = net.clone(name="twin")
    y = twin(x)
    assert fast_builds == []
    assert np.array_equal(_forward(y), _forward(net(x)))
    assert fast_builds == ["Conv2d"]
    twin(x)
    assert fast_builds == ["Conv2d"] * 2


def test_a_loaded_file_that_replaces_the_entries_is_used(fast_builds, tmp_path):
    net = _conv_net()
    x = _x()
    before = _forward(net(x))
    net.save_parameters(tmp_path / "net.h5")
    for param in net.get_parameters().values():
        param.d = 0
    assert not _forward(net(x)).any()
    net.load_parameters(tmp_path / "net.h5")
    assert np.array_equal(_forward(net(x)), before)


def test_the_benchmark_models_build_the_pf_graph_on_the_fast_path(fast_builds):
    from benchmarks import graph as benchmark

    nets = benchmark.build_nets("resnet18")
    (pf_net, x), (ours, _) = nets["pf"], nets["ours"]
    ours(x, True)  # the inference graph's first build goes through PF
    del fast_builds[:]
    assert graph(ours(x)) == graph(pf_net(x))
    assert graph(ours(x, True)) == graph(pf_net(x, True))
    layers = [m for m in ours.modules() if isinstance(m, nm.Layer)]
    assert len(layers) == 41  # 20 convolutions, 20 batch normalizations, the classifier
    assert len(fast_builds) == 2 * len(layers)


def test_a_layer_class_with_a_call_of_its_own_goes_through_pf(fast_builds):
    class Scaled(nm.Affine):
        def _call_kwargs(self, test, overrides):  # the arguments decided per call
            return {**super()._call_kwargs(test, overrides), "fix_parameters": test}

    class Holder(nm.Module):
        def __init__(self):
            self.fc = Scaled(6, 3)

        def __call__(self, x, test=False):
            return self.fc(x, test=test)

    net = Holder(name="net")
    x = _x((2, 6))
    for _ in range(2):
        y = net(x, test=True)
        assert [v.need_grad for v in y.parent.inputs[1:]] == [False, False]
    assert fast_builds == []


@pytest.mark.parametrize("family", ["affine", "convolution", "batch_normalization"])
def test_functions_replaced_after_a_call_are_called(family, fast_builds, monkeypatch):
    """PF's body looks ``F.<function>`` up at each call: a replacement is seen, and so is
    putting the original back, as with PF code (a profiler, a quantization pass)."""
    import nnabla.functions as F

    layer = {"affine": lambda: nm.Affine(6, 3), "convolution": lambda: nm.Conv2d(6, 3, 1),
             "batch_normalization": lambda: nm.BatchNorm2d(6)}[family]()
    net = Net(layer, name="net")
    x = nn.Variable((2, 6, 1, 1))
    net(x)
    original = getattr(F, family)
    monkeypatch.setattr(F, family, lambda x, *rest, **kw: original(F.identity(x), *rest, **kw))
    assert [f[0] for f in graph(net(x))][0] == "Identity"  # through PF
    assert [f[0] for f in graph(net(x))][0] == "Identity"  # fast, with the replacement
    monkeypatch.setattr(F, family, original)
    assert "Identity" not in [f[0] for f in graph(net(x))]  # through PF
    net(x)
    assert fast_builds == [type(layer).__name__] * 2


@pytest.mark.parametrize("where", ["PF", "nnabla.parameter"])
def test_registry_functions_replaced_after_a_call_are_called(where, fast_builds, monkeypatch):
    """``get_parameter_or_create`` in PF, or ``get_parameter`` in ``nnabla.parameter``."""
    import nnabla.parameter as parameter

    net = Net(nm.Affine(6, 3), name="net")
    x = nn.Variable((2, 6))
    net(x)
    seen = []
    if where == "PF":
        original = PF.get_parameter_or_create

        def replaced(name, *args, **kwargs):
            seen.append(name)
            return original(name, *args, **kwargs)

        monkeypatch.setattr(PF, "get_parameter_or_create", replaced)
    else:
        original = parameter.get_parameter

        def replaced(name):
            seen.append(name)
            return original(name)

        monkeypatch.setattr(parameter, "get_parameter", replaced)
    net(x)
    assert seen == ["W", "b"] and fast_builds == []


def test_an_argument_changed_in_place_goes_through_pf(fast_builds):
    """A list given to the constructor and changed later: PF's call sees the new contents."""
    outmaps = [2, 3]
    net = Net(nm.Affine(6, outmaps), name="net")
    x = nn.Variable((2, 6))
    net(x)
    net(x)
    assert fast_builds == ["Affine"]
    outmaps[1] = 4  # the same list object: PF computes W's shape (6, 2, 4) from it
    with pytest.raises(ValueError, match="size of existing parameter"):
        net(x)
    outmaps[1] = 3
    assert net(x).shape == (2, 2, 3) and fast_builds == ["Affine", "Affine"]
