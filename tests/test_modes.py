"""Training, inference and frozen weights (docs/concepts.md, "Training and evaluation")."""

import nnabla as nn
import nnabla.parametric_functions as PF
import pytest
from equivalence import assert_equivalent, run
from models import ResUnit, res_unit_pf

import nnabla_modules as nm


def _bn_graph_uses_batch_stat(y):
    return y.parent.info.args["batch_stat"]


def test_train_and_eval_set_the_whole_tree_and_return_the_module():
    model = ResUnit(4, 8)
    assert model.training and all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    assert model.train() is model and all(m.training for m in model.modules())


@pytest.mark.parametrize("training, test, kwargs, batch_stat", [
    (True, False, {}, True),
    (True, True, {}, False),  # test=True infers even in training mode
    (False, False, {}, False),  # seed-style test=False does not force batch stats in eval()
    (False, True, {}, False),
    (False, False, {"batch_stat": True}, True),  # an explicit PF argument forces
    (True, False, {"batch_stat": False}, False),
])
def test_batch_norm_statistics(training, test, kwargs, batch_stat):
    bn = nm.BatchNorm2d(3, name="bn").train(training)
    y = bn(nn.Variable((2, 3, 2, 2)), test, **kwargs)
    assert _bn_graph_uses_batch_stat(y) is batch_stat


def test_constructor_batch_stat_false_always_infers():
    bn = nm.BatchNorm2d(3, batch_stat=False, name="bn")
    assert _bn_graph_uses_batch_stat(bn(nn.Variable((2, 3, 2, 2)))) is False


def test_eval_res_unit_equals_pf_inference():
    def pf_code(x):
        with nn.parameter_scope("res_unit"):
            return res_unit_pf(x, 4, 8, test=True)

    expected = run(pf_code, [(2, 4, 3, 3)])
    got = run(lambda x: ResUnit(4, 8).eval()(x), [(2, 4, 3, 3)])
    assert_equivalent(expected, got)


def test_freeze_sets_need_grad_in_the_registry_and_survives_calls():
    model = ResUnit(4, 4, name="net")
    x = nn.Variable((1, 4, 2, 2))
    model(x)
    model.conv0.freeze()
    registry = nn.get_parameters(grad_only=False)
    assert registry["net/conv0/conv/W"].need_grad is False
    assert "conv0/conv/W" not in model.get_parameters()
    y = model(x)  # PF asks need_grad=True on every call: frozen stays frozen
    assert registry["net/conv0/conv/W"].need_grad is False
    assert "net/conv0/conv/W" not in nn.get_parameters()
    graph_params = {}

    def collect(f):
        for v in f.inputs:
            if v.parent is None and v.name:
                graph_params.setdefault(v.name, []).append(v.need_grad)

    y.visit(collect)
    assert graph_params["W"].count(False) == 1  # the graph does not backprop into conv0/W
    model.unfreeze()
    assert registry["net/conv0/conv/W"].need_grad is True
    assert registry["net/bn0/bn/mean"].need_grad is False  # its own flag comes back
    assert "conv0/conv/W" in model.get_parameters()


def test_freeze_before_creation_and_fix_parameters():
    layer = nm.Affine(2, 2, name="fc").freeze()
    assert layer.get_parameters() == {}
    assert list(layer.get_parameters(grad_only=False)) == ["affine/W", "affine/b"]
    layer.unfreeze()
    assert list(layer.get_parameters()) == ["affine/W", "affine/b"]
    fixed = nm.Affine(2, 2, fix_parameters=True, name="fixed")
    y = fixed(nn.Variable((1, 2)))
    assert not y.parent.inputs[1].need_grad  # PF semantics kept: the graph does not train W
    assert nn.get_parameters()["fixed/affine/W"].need_grad  # and PF keeps the registry flag


def test_freeze_pf_code_inside_call():
    class Wrapped(nm.Module):
        def __call__(self, x):
            return PF.affine(x, 2, name="fc")

    model = Wrapped(name="w")
    model(nn.Variable((1, 2)))
    model.freeze()
    model(nn.Variable((1, 2)))
    assert nn.get_parameters() == {}


def test_frozen_before_the_first_call_then_unfrozen():
    class Wrapped(nm.Module):
        def __call__(self, x):
            return PF.affine(x, 2, name="fc")

    model = Wrapped(name="w").freeze()
    model(nn.Variable((1, 2)))
    assert model.get_parameters() == {}
    model.unfreeze()
    assert list(model.get_parameters()) == ["fc/affine/W", "fc/affine/b"]
