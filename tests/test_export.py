"""export_nnp: the inference graph round trips through NNabla's own NnpLoader with equal outputs."""

import os
import signal
import zipfile

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import nnabla.solvers as S
import numpy as np
import pytest
from models import ResUnit, Stack
from nnabla.utils.nnp_graph import NnpLoader

import nnabla_modules as nm
from nnabla_modules.export import export_nnp


def randomize(module):
    rng = np.random.RandomState(0)
    for param in module.get_parameters(grad_only=False).values():
        param.d = rng.uniform(0.5, 1.5, param.shape).astype(np.float32)  # positive: variances


def reference_outputs(module, *arrays):
    module.eval()
    outputs = module(*[nn.Variable.from_numpy_array(a) for a in arrays])
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    F.sink(*outputs).forward()
    return [y.d.copy() for y in outputs]


def loaded_outputs(path, arrays, batch_size, network="network"):
    nn.clear_parameters()  # the loader's parameters alone compute the outputs
    net = NnpLoader(path).get_network(network, batch_size=batch_size)
    for variable, array in zip(net.inputs.values(), arrays):
        variable.d = array
    outputs = list(net.outputs.values())
    F.sink(*outputs).forward()
    return [y.d.copy() for y in outputs]


def test_the_seed_res_unit_round_trips(tmp_path):
    unit = ResUnit(8, 16)
    randomize(unit)
    x = np.random.RandomState(1).randn(2, 8, 5, 5).astype(np.float32)
    path = str(tmp_path / "res_unit.nnp")
    assert export_nnp(unit, path, nn.Variable.from_numpy_array(x)) == path
    assert unit.training  # exported in eval mode, the mode restored
    expected = reference_outputs(unit, x)
    got = loaded_outputs(path, [x], batch_size=2)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-6, atol=1e-6)


def test_the_file_holds_the_module_keys_and_one_executor(tmp_path):
    unit = ResUnit(8, 8, name="outer")
    path = str(tmp_path / "unit.nnp")
    export_nnp(unit, path, (2, 8, 4, 4))
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["network.nntxt", "nnp_version.txt", "parameter.h5"]
    nn.clear_parameters()
    loader = NnpLoader(path)
    assert loader.get_network_names() == ["network"]
    loader.get_network("network", batch_size=2)
    assert list(nn.get_parameters(grad_only=False)) == list(unit.get_parameters(grad_only=False))
    assert os.listdir(tmp_path) == ["unit.nnp"]  # no temporary file left


def test_several_inputs_and_outputs_named_and_any_batch_size(tmp_path):
    class TwoInTwoOut(nm.Module):
        def __init__(self):
            self.a = nm.Linear(3, 4)
            self.b = nm.Linear(5, 4)

        def __call__(self, x, y):
            h = F.tanh(self.a(x) + self.b(y))
            return h, F.sum(self.a(x), axis=1)

    module = TwoInTwoOut(name="two")
    randomize(module)
    path = str(tmp_path / "two.nnp")
    export_nnp(
        module,
        path,
        (2, 3),
        (2, 5),
        input_names=["image", "text"],
        output_names=["features", "score"],
        network_name="two_net",
    )
    rng = np.random.RandomState(2)
    x, y = rng.randn(6, 3).astype(np.float32), rng.randn(6, 5).astype(np.float32)
    expected = reference_outputs(module, x, y)
    nn.clear_parameters()
    net = NnpLoader(path).get_network("two_net", batch_size=6)
    assert list(net.inputs) == ["image", "text"]
    assert list(net.outputs) == ["features", "score"]
    got = loaded_outputs(path, [x, y], batch_size=6, network="two_net")
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_an_output_that_feeds_another_is_among_the_loaded_variables(tmp_path):
    class Chained(nm.Module):
        def __init__(self):
            self.fc = nm.Linear(3, 4)

        def __call__(self, x):
            h = F.tanh(self.fc(x))
            return h, F.sum(h, axis=1)

    path = str(tmp_path / "chained.nnp")
    export_nnp(Chained(name="chained"), path, (2, 3))
    net = NnpLoader(path).get_network("network", batch_size=2)
    assert list(net.outputs) == ["y1"]  # NNabla lists the outputs nothing else consumes
    assert net.variables["y0"].shape == (2, 4)


def test_containers_and_pf_code_inside_call(tmp_path):
    class Lazy(nm.Module):
        def __init__(self):
            self.stack = Stack()

        def __call__(self, x):
            cls, box = self.stack(x)
            return PF.affine(F.concatenate(cls, box), 2, name="merge")

    module = Lazy(name="lazy")
    module.stack.get_parameters()
    randomize(module)
    x = np.random.RandomState(3).randn(2, 3, 8, 8).astype(np.float32)
    path = str(tmp_path / "lazy.nnp")
    export_nnp(module, path, (2, 3, 8, 8))
    randomize(module)  # merge/affine/* exist only after the export's call
    export_nnp(module, path, (2, 3, 8, 8))  # overwrites the previous file
    expected = reference_outputs(module, x)
    got = loaded_outputs(path, [x], batch_size=2)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5, atol=1e-5)


def test_bad_arguments_are_refused(tmp_path):
    fc = nm.Linear(3, 2, name="fc")
    with pytest.raises(ValueError, match="must end with .nnp"):
        export_nnp(fc, str(tmp_path / "fc.h5"), (1, 3))
    with pytest.raises(ValueError, match="2 input names for 1 inputs"):
        export_nnp(fc, str(tmp_path / "fc.nnp"), (1, 3), input_names=["a", "b"])
    assert os.listdir(tmp_path) == []


def test_parameters_outside_the_module_are_refused(tmp_path):
    with nn.parameter_scope("elsewhere"):
        outside = PF.affine(nn.Variable((1, 3)), 2)
    weight = outside.parent.inputs[1]

    class UsesOutside(nm.Module):
        def __call__(self, x):
            return F.affine(x, weight)

    with pytest.raises(ValueError, match="elsewhere/affine/W"):
        export_nnp(UsesOutside(name="user"), str(tmp_path / "user.nnp"), (1, 3))


def test_a_new_file_gets_the_umask_and_an_old_one_keeps_its_mode(tmp_path):
    fc = nm.Linear(3, 2, name="fc")
    path = str(tmp_path / "fc.nnp")
    previous = os.umask(0o027)
    try:
        export_nnp(fc, path, (1, 3))
    finally:
        os.umask(previous)
    assert os.stat(path).st_mode & 0o777 == 0o640
    os.chmod(path, 0o604)
    export_nnp(fc, path, (1, 3))
    assert os.stat(path).st_mode & 0o777 == 0o604
    fc.save_parameters(str(tmp_path / "fc.h5"))  # the library's other files: the same rule
    previous = os.umask(0o027)
    try:
        fc.save_parameters(str(tmp_path / "fc2.h5"))
    finally:
        os.umask(previous)
    assert os.stat(tmp_path / "fc2.h5").st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    "names, message",
    [
        ({"input_names": ["x"], "output_names": ["x"]}, r"\['x'\] are given more than once"),
        ({"output_names": ["y", "y"]}, r"\['y'\] are given more than once"),
        ({"input_names": ["affine/W"]}, r"\['affine/W'\] are parameter keys"),
        ({"input_names": [""]}, "non-empty strings"),
        ({"output_names": [3]}, "non-empty strings"),
        ({"output_names": ["@network/y"]}, "starts with @, which NNabla reserves"),
    ],
)
def test_clashing_or_empty_names_are_refused(tmp_path, names, message):
    class Two(nm.Module):
        def __init__(self):
            self.fc = nm.Linear(3, 2, name="")

        def __call__(self, x):
            y = self.fc(x)
            return (y, F.tanh(y)) if len(names.get("output_names", "y")) == 2 else y

    with pytest.raises(ValueError, match=r"export_nnp\(Two 'two'\): .*" + message):
        export_nnp(Two(name="two"), str(tmp_path / "two.nnp"), (1, 3), **names)
    assert os.listdir(tmp_path) == []


def test_a_negative_dimension_is_a_value_error_not_an_abort(tmp_path):
    with pytest.raises(ValueError, match=r"Linear 'fc'.*\(-1, 3\).*must not be negative"):
        export_nnp(nm.Linear(3, 2, name="fc"), str(tmp_path / "fc.nnp"), (-1, 3))


def test_a_graph_that_fixes_the_batch_size_names_the_module(tmp_path):
    class Flatten(nm.Module):
        def __init__(self):
            self.fc = nm.Linear(3, 4)

        def __call__(self, x):
            return F.reshape(self.fc(x), (1, -1))  # the batch folded into one row

    module = Flatten(name="flat")
    path = str(tmp_path / "flat.nnp")
    with pytest.raises(ValueError, match=r"export_nnp\(Flatten 'flat'\).*batch size 2"):
        export_nnp(module, path, (2, 3))
    assert os.listdir(tmp_path) == []
    export_nnp(module, path, (2, 3), variable_batch_size=False)
    net = NnpLoader(path).get_network("network", batch_size=2)
    assert net.outputs["y"].shape == (1, 8)


# --- NNabla's save of a training configuration ----------------------------------------


def _training_contents(loss, x, t, solver):
    return {
        "networks": [
            {"name": "net", "batch_size": 2, "outputs": {"loss": loss}, "names": {"x": x, "t": t}}
        ],
        "executors": [
            {"name": "runtime", "network": "net", "data": ["x", "t"], "output": ["loss"]}
        ],
        "optimizers": [
            {
                "name": "optimizer",
                "solver": solver,
                "network": "net",
                "dataset": "train",
                "weight_decay": 0,
                "lr_decay": 1,
                "lr_decay_interval": 1,
                "update_interval": 1,
            }
        ],
        "datasets": [
            {
                "name": "train",
                "uri": "unused",
                "cache_dir": None,
                "variables": ["x", "t"],
                "shuffle": False,
                "batch_size": 2,
                "no_image_normalization": True,
            }
        ],
        "training_config": {"max_epoch": 1, "iter_per_epoch": 1, "save_best": True},
    }


def _states(solver):
    return {
        key: {name: np.array(value.d) for name, value in state.pstate.items()}
        for key, state in solver.get_states().items()
    }


@pytest.mark.parametrize("with_states", [False, True], ids=["config", "config and states"])
def test_nnablas_save_of_the_docs_solver_loads_a_configuration_that_trains(tmp_path, with_states):
    from nnabla.utils.load import load
    from nnabla.utils.save import save

    model = nm.Sequential(nm.Affine(4, 8), nm.Affine(8, 4), name="regressor")
    x, t = nn.Variable((2, 4)), nn.Variable((2, 4))
    loss = F.mean(F.squared_error(model(x), t))
    solver = S.Momentum(0.1)
    solver.set_parameters(model.get_parameters())
    x.d, t.d = np.ones((2, 4)), np.full((2, 4), 3.0)
    loss.forward()
    solver.zero_grad()
    loss.backward()
    solver.update()  # a momentum of its own in every state (the docs' recipe above)
    keys, states = list(solver.get_parameters()), _states(solver)

    path = str(tmp_path / "train.nnp")
    save(path, _training_contents(loss, x, t, solver), include_solver_state=with_states)
    assert list(solver.get_parameters()) == keys  # the solver is as it was
    for key in keys:
        np.testing.assert_array_equal(_states(solver)[key]["m"], states[key]["m"])

    full = {f"{model.prefix}/{key}": key for key in keys}
    nn.clear_parameters()
    optimizer = load([path], prepare_data_iterator=False).optimizers["optimizer"]
    multipliers = {
        p.variable_name: p.learning_rate_multiplier for p in optimizer.proto.parameter_variable
    }
    assert multipliers == dict.fromkeys(full, 1.0)
    loaded = optimizer.solver
    assert sorted(loaded.get_parameters()) == sorted(full)
    if with_states:
        for key, relative in full.items():
            np.testing.assert_array_equal(_states(loaded)[key]["m"], states[relative]["m"])
    before = {key: param.d.copy() for key, param in loaded.get_parameters().items()}
    variables = optimizer.network.variables
    variables["x"].variable_instance.d = np.ones((2, 4))
    variables["t"].variable_instance.d = np.full((2, 4), 3.0)
    loaded_loss = optimizer.loss_variables[0].variable_instance
    loaded_loss.forward()
    loaded.zero_grad()
    loaded_loss.backward()
    loaded.update()
    for key, param in loaded.get_parameters().items():
        assert not np.array_equal(param.d, before[key]), key  # every weight trains


def test_a_ctrl_c_as_nnablas_save_gives_the_solver_back_waits_for_it(tmp_path, monkeypatch):
    """The Ctrl-C arrives as the solver's own keys are being given back: it is raised once
    they are, the solver keyed and ordered as before, its states its own."""
    from nnabla.utils.save import save

    from nnabla_modules import _solver_save

    model = nm.Sequential(nm.Affine(4, 8), nm.Affine(8, 4), name="regressor")
    x, t = nn.Variable((2, 4)), nn.Variable((2, 4))
    loss = F.mean(F.squared_error(model(x), t))
    solver = S.Momentum(0.1)
    solver.set_parameters(model.get_parameters())
    keys, states = list(solver.get_parameters()), _states(solver)
    give_back = _solver_save._give_back

    def interrupted(*args):
        os.kill(os.getpid(), signal.SIGINT)
        return give_back(*args)

    monkeypatch.setattr(_solver_save, "_give_back", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(str(tmp_path / "train.nnp"), _training_contents(loss, x, t, solver),
             include_solver_state=True)
    assert list(solver.get_parameters()) == keys
    assert list(_states(solver)) == keys
    for key in keys:
        np.testing.assert_array_equal(_states(solver)[key]["m"], states[key]["m"])


def test_the_docs_solver_states_resume_into_a_model_under_another_name(tmp_path):
    def trained(name):
        model = nm.Sequential(nm.Affine(4, 8), nm.Affine(8, 4), name=name)
        loss = F.mean(model(nn.Variable.from_numpy_array(np.ones((2, 4)))) ** 2)
        solver = S.Adam(0.1)
        solver.set_parameters(model.get_parameters())
        return loss, solver

    loss, solver = trained("first_run")
    loss.forward()
    solver.zero_grad()
    loss.backward()
    solver.update()
    solver.save_states(str(tmp_path / "states.h5"))
    _, resumed = trained("second_run")
    resumed.load_states(str(tmp_path / "states.h5"))
    assert list(_states(resumed)) == list(_states(solver))
    for key, state in _states(solver).items():
        for name, value in state.items():
            assert value.any()  # trained: a state to resume
            np.testing.assert_array_equal(_states(resumed)[key][name], value)
