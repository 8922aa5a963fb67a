"""Workflows of training code (target networks, EMA, fine-tuning, resume, surgery,
forked workers), each checked against the rules of docs/concepts.md."""

import os
import threading

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import pytest

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
        "a/affine/W", "a/affine/b", "b/affine/W", "b/affine/b"]
