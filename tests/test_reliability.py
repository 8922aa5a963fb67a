"""docs/faq.md: registry hygiene, temporary modules, shared PF weights, threads."""

import threading
import warnings

import nnabla as nn
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from conftest import registry_keys
from models import ResUnit

import nnabla_modules as nm

X = (1, 8, 4, 4)


@pytest.mark.parametrize("use", ["call", "get_parameters"])
def test_rebuilding_auto_named_models_keeps_the_registry_bounded(use):
    sizes = []
    for _ in range(60):
        model = ResUnit(8, 8)
        model(nn.Variable(X)) if use == "call" else model.get_parameters()
        sizes.append(len(nn.get_parameters(grad_only=False)))
    assert max(sizes) <= 2 * 18  # the live model and at most one dead one's stale entries
    assert sizes[-10:] == [36] * 10


def test_a_rebuilt_auto_named_model_starts_from_fresh_weights():
    first = ResUnit(8, 8)
    first(nn.Variable(X))
    first.get_parameters()["conv0/conv/W"].d = 7.0
    del first
    second = ResUnit(8, 8)  # takes the free name "res_unit" again
    second(nn.Variable(X))
    assert second.prefix == "res_unit"
    assert not np.all(second.get_parameters()["conv0/conv/W"].d == 7.0)


def test_a_temporary_model_leaves_its_weights_like_pf_code():
    y = ResUnit(8, 8)(nn.Variable(X))  # the model object is gone after this line
    assert y.shape == X
    assert len(registry_keys()) == 18  # until an auto-named ResUnit takes the name again


def test_rebuilding_named_models_reuses_the_named_entries():
    for _ in range(20):
        model = ResUnit(8, 8, name="net")
        model(nn.Variable(X))
    assert len(registry_keys()) == 18
    weights = model.get_parameters()["conv0/conv/W"]
    model.release()
    assert registry_keys() == []
    model(nn.Variable(X))
    assert len(registry_keys()) == 18 and model.get_parameters()["conv0/conv/W"] is not weights


def test_load_then_build_idiom_still_works():
    with nn.parameter_scope("res_unit"):
        from models import res_unit_pf

        res_unit_pf(nn.Variable(X), 8, 8)
    loaded = nn.get_parameters()["res_unit/conv0/conv/W"]
    model = ResUnit(8, 8)  # auto-named: res_unit, picks up what is there
    model(nn.Variable(X))
    assert model.get_parameters()["conv0/conv/W"] is loaded


def test_orphans_lists_what_no_live_module_owns():
    PF.affine(nn.Variable((1, 2)), 2, name="old_pf_code")
    kept = ResUnit(8, 8, name="kept")
    kept(nn.Variable(X))
    dropped = ResUnit(8, 8, name="dropped")
    dropped(nn.Variable(X))
    assert nm.orphans() == ["old_pf_code/"]
    del dropped
    assert nm.orphans() == ["old_pf_code/", "dropped/"]
    kept.conv0.release()
    assert "kept/conv0/conv/W" not in registry_keys()
    assert nm.orphans() == ["old_pf_code/", "dropped/"]


def test_a_module_built_and_dropped_inside_a_call_is_an_error():
    class Outer(nm.Module):
        def __call__(self, x):
            return nm.Affine(2, 2)(x)

    with pytest.raises(RuntimeError, match=r"Affine 'outer/affine' was constructed during a "
                                           r"call of Outer 'outer'.*Construct it in __init__"):
        Outer()(nn.Variable((1, 2)))
    assert registry_keys() == []


def test_named_or_held_modules_built_inside_a_call_reuse_one_set_of_weights():
    class Outer(nm.Module):
        def __call__(self, x):
            self.held = nm.Affine(2, 2)
            return nm.Affine(2, 2, name="by_name")(self.held(x))

    model = Outer(name="o")
    for _ in range(3):
        model(nn.Variable((1, 2)))
    assert registry_keys() == ["o/held/affine/W", "o/held/affine/b",
                               "o/by_name/affine/W", "o/by_name/affine/b"]


def test_two_unnamed_pf_calls_in_one_call_warn():
    class Shares(nm.Module):
        def __call__(self, x):
            return PF.affine(PF.affine(x, 2), 2)

    expected = "Shares 's': .* both use the scope 'affine/'"
    with pytest.warns(nm.SharedParameterWarning, match=expected) as record:
        Shares(name="s")(nn.Variable((1, 2)))
    assert len(record) == 1 and record[0].filename == __file__  # points at the user's line


def test_named_pf_calls_and_shared_layers_do_not_warn():
    class Fine(nm.Module):
        def __init__(self):
            self.fc = nm.Affine(2, 2)

        def __call__(self, x):
            h = PF.affine(x, 2, name="a")
            h = PF.affine(h, 2, name="b")
            return self.fc(self.fc(h))  # one layer used twice: deliberate sharing

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = Fine(name="f")
        model(nn.Variable((1, 2)))
        model(nn.Variable((1, 2)))  # calling a module twice is not a second PF call


def test_threads_never_mix_scopes():
    n_threads, n_calls = 4, 15
    models = [ResUnit(8, 8, name=f"t{i}") for i in range(n_threads)]
    errors = []
    start = threading.Barrier(n_threads)

    def work(model):
        try:
            start.wait()
            for _ in range(n_calls):
                model(nn.Variable(X))
                assert len(model.get_parameters(grad_only=False)) == 18
        except Exception as error:  # reported below, with the thread's model
            errors.append((model.prefix, error))

    threads = [threading.Thread(target=work, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    keys = registry_keys()
    assert len(keys) == 18 * n_threads
    for i in range(n_threads):
        assert sum(k.startswith(f"t{i}/") for k in keys) == 18
    assert all(k.count("/") == 3 for k in keys)  # e.g. t2/conv0/conv/W, never t2/t3/...
    assert nn.parameter.current_scope is nn.parameter.root_scope
