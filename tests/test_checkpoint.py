"""Per-module checkpoints in NNabla's formats, transactional and in place (docs/checkpoints.md)."""

import io as stdio
import os
import pickle
import signal
import traceback

import h5py
import nnabla as nn
import nnabla.parametric_functions as PF
import nnabla.solvers as S
import numpy as np
import pytest
from conftest import at_write, snapshot
from models import ResUnit, res_unit_pf
from nnabla.core.module import Module as NNablaModule
from nnabla.utils.save import save as save_nnp

import nnabla_modules as nm
from nnabla_modules import checkpoint, files

X_SHAPE = (2, 8, 4, 4)


def randomize(module, seed=0):
    """Distinct values in every parameter, so that a load shows."""
    rng = np.random.default_rng(seed)
    for param in module.get_parameters(grad_only=False).values():
        param.d = rng.standard_normal(param.shape).astype(np.float32)
    return module.state_dict()


def assert_state(module, expected):
    actual = module.state_dict()
    assert list(actual) == list(expected)
    for key in expected:
        np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)


def claims_of(module):
    return {name: dict(m._module_state.claims) for name, m in module.named_modules()}


def output(module, x_data):
    x = nn.Variable.from_numpy_array(x_data)
    y = module(x, test=True)
    y.forward()
    return y.d.copy()


# --- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".h5", ".protobuf"])
def test_round_trip_in_each_written_format(tmp_path, ext):
    unit = ResUnit(8, 16)
    saved = randomize(unit, seed=1)
    unit.save_parameters(tmp_path / f"unit{ext}")
    randomize(unit, seed=2)
    assert unit.load_parameters(tmp_path / f"unit{ext}") == ([], [], [])
    assert_state(unit, saved)


@pytest.mark.parametrize("ext", [".h5", ".protobuf", "h5"])
def test_round_trip_through_a_file_object(ext):
    unit = ResUnit(8, 8)
    saved = randomize(unit, seed=1)
    buffer = stdio.BytesIO()
    unit.save_parameters(buffer, extension=ext)
    randomize(unit, seed=2)
    unit.load_parameters(buffer, extension=ext)
    assert_state(unit, saved)


def test_a_file_object_needs_an_extension():
    unit = ResUnit(8, 8)
    with pytest.raises(ValueError, match="extension="):
        unit.save_parameters(stdio.BytesIO())
    with pytest.raises(ValueError, match="res_unit.*extension="):
        unit.load_parameters(stdio.BytesIO(b""))


@pytest.mark.parametrize("name", ["unit.txt", "unit.npz", "unit"])
def test_other_extensions_are_an_error_naming_module_and_file(tmp_path, name):
    unit = ResUnit(8, 8)
    with pytest.raises(ValueError, match=rf"ResUnit 'res_unit'.*{name}.*\.h5"):
        unit.save_parameters(tmp_path / name)
    assert not os.listdir(tmp_path)
    (tmp_path / name).write_bytes(b"x")
    before = snapshot()
    with pytest.raises(ValueError, match=rf"ResUnit 'res_unit'.*{name}"):
        unit.load_parameters(tmp_path / name)
    assert_same(before, snapshot())


def test_a_directory_is_named_as_one_with_the_files_it_holds(tmp_path):
    unit = ResUnit(8, 8)
    message = (
        r"ResUnit 'res_unit': '.*' is a directory, not a parameter file; .*e\.g\. '.*model\.h5'$"
    )
    with pytest.raises(IsADirectoryError, match=message) as saving:
        unit.save_parameters(tmp_path)
    assert isinstance(saving.value, files.ParameterFileError)
    assert not os.listdir(tmp_path)
    unit.save_parameters(tmp_path / "best.h5")
    before = snapshot()
    with pytest.raises(
        files.ParameterFileError, match=r"is a directory, .*best\.h5' \(it holds best\.h5\)$"
    ) as loading:
        unit.load_parameters(tmp_path)
    assert isinstance(loading.value, IsADirectoryError)
    assert_same(before, snapshot())
    (tmp_path / "old.h5").mkdir()  # a directory named like a file
    with pytest.raises(ValueError, match=r"old\.h5' is a directory"):
        unit.load_parameters(tmp_path / "old.h5")


def test_a_traceback_names_the_errors_as_they_are_imported(tmp_path):
    unit = ResUnit(8, 8)
    with pytest.raises(checkpoint.CheckpointError) as caught:
        unit.load_state_dict({})
    assert traceback.format_exception_only(caught.type, caught.value)[0].startswith(
        "nnabla_modules.checkpoint.CheckpointError: ResUnit 'res_unit': the state dict"
    )
    result = caught.value.result
    assert type(pickle.loads(pickle.dumps(result))) is checkpoint.LoadResult
    (tmp_path / "bad.h5").write_bytes(b"not HDF5")
    with pytest.raises(files.ParameterFileError) as caught:
        unit.load_parameters(tmp_path / "bad.h5")
    assert traceback.format_exception_only(caught.type, caught.value)[0].startswith(
        "nnabla_modules.files.ParameterFileError: "
    )


def test_state_dict_holds_copies_and_loads_back():
    unit = ResUnit(8, 8)
    state = unit.state_dict()
    assert list(state) == list(unit.get_parameters(grad_only=False))
    state["conv0/conv/W"] += 1  # a copy: the registry does not move
    assert not np.array_equal(unit.get_parameters()["conv0/conv/W"].d, state["conv0/conv/W"])
    unit.load_state_dict(state)
    assert_state(unit, state)


def test_load_state_dict_takes_variables_and_float64():
    unit = ResUnit(8, 8)
    params = unit.get_parameters(grad_only=False)
    state = {k: nn.Variable.from_numpy_array(np.full(v.shape, 0.5)) for k, v in params.items()}
    unit.load_state_dict(state)
    for param in params.values():
        assert param.d.dtype == np.float32 and np.all(param.d == 0.5)


def test_grad_only_saves_the_trainable_parameters():
    unit = ResUnit(8, 8)
    saved = randomize(unit)
    path = unit.save_parameters  # noqa: F841 (readability below)
    buffer = stdio.BytesIO()
    unit.save_parameters(buffer, grad_only=True, extension=".h5")
    assert list(files.read_parameters(buffer, ".h5")) == list(unit.get_parameters(grad_only=True))
    randomize(unit, seed=5)
    with pytest.raises(checkpoint.CheckpointError, match="bn0/bn/mean"):
        unit.load_parameters(buffer, extension=".h5")
    result = unit.load_parameters(buffer, strict=False, extension=".h5")
    assert result.missing_keys == [
        k for k, v in unit.get_parameters(grad_only=False).items() if not v.need_grad
    ]
    for key in unit.get_parameters(grad_only=True):
        np.testing.assert_array_equal(unit.state_dict()[key], saved[key])


# --- NNabla's own files and tools ----------------------------------------------------------


def test_our_files_are_nnablas_layout(tmp_path):
    unit = ResUnit(8, 8)
    unit(nn.Variable(X_SHAPE))
    unit.bn0.freeze()
    unit.save_parameters(tmp_path / "unit.h5")
    params = unit.get_parameters(grad_only=False)
    with h5py.File(tmp_path / "unit.h5", "r") as handle:
        for index, (key, param) in enumerate(params.items()):
            assert handle[key].attrs["index"] == index
            # each weight's own flag, not the freeze (docs/checkpoints.md)
            running_statistic = key.endswith(("/mean", "/var"))
            assert bool(handle[key].attrs["need_grad"]) is not running_statistic
            np.testing.assert_array_equal(handle[key][...], param.d)


@pytest.mark.parametrize("ext", [".h5", ".protobuf"])
def test_nn_load_parameters_reads_our_files(tmp_path, ext):
    unit = ResUnit(8, 8)
    saved = randomize(unit)
    need_grad = {k: v.need_grad for k, v in unit.get_parameters(grad_only=False).items()}
    unit.save_parameters(tmp_path / f"unit{ext}")
    nn.clear_parameters()
    nn.load_parameters(str(tmp_path / f"unit{ext}"))
    loaded = nn.get_parameters(grad_only=False)
    assert list(loaded) == list(saved)
    for key in saved:
        np.testing.assert_array_equal(loaded[key].d, saved[key])
        assert loaded[key].need_grad == need_grad[key]


@pytest.mark.parametrize("ext", [".h5", ".protobuf"])
def test_we_read_nn_save_parameters_files(tmp_path, ext):
    unit = ResUnit(8, 8)
    saved = randomize(unit)
    nn.save_parameters(str(tmp_path / f"all{ext}"))  # the whole registry, full keys
    randomize(unit, seed=3)
    unit.load_parameters(tmp_path / f"all{ext}")
    assert_state(unit, saved)


def _pf_checkpoint(path, x_data, prefix):
    """Old code: res_unit_pf under ``prefix``, saved with nn.save_parameters; its output."""
    nn.clear_parameters()
    with nn.parameter_scope(prefix):
        y = res_unit_pf(nn.Variable.from_numpy_array(x_data), 8, 16, test=True)
    rng = np.random.default_rng(7)
    for param in nn.get_parameters(grad_only=False).values():
        param.d = rng.standard_normal(param.shape).astype(np.float32)
    y.forward()
    nn.save_parameters(str(path))
    nn.clear_parameters()
    return y.d.copy()


@pytest.mark.parametrize("prefix", ["res_unit", ""])
def test_pf_checkpoint_loads_into_the_module_and_back(tmp_path, prefix):
    x_data = np.random.default_rng(0).standard_normal(X_SHAPE).astype(np.float32)
    expected = _pf_checkpoint(tmp_path / "pf.h5", x_data, prefix)
    unit = ResUnit(8, 16)  # prefix res_unit: the file has full keys, or relative ones
    unit.load_parameters(tmp_path / "pf.h5")
    np.testing.assert_allclose(output(unit, x_data), expected, rtol=1e-5, atol=1e-6)

    unit.save_parameters(tmp_path / "module.h5")  # and back into the old PF code
    nn.clear_parameters()
    with nn.parameter_scope("old"):
        nn.load_parameters(str(tmp_path / "module.h5"))
        y = res_unit_pf(nn.Variable.from_numpy_array(x_data), 8, 16, test=True)
    y.forward()
    np.testing.assert_allclose(y.d, expected, rtol=1e-5, atol=1e-6)


def test_nnabla_module_files_load(tmp_path):
    class Block(NNablaModule):
        def call(self, x):
            return PF.convolution(x, 4, (3, 3), pad=(1, 1))

    class Net(NNablaModule):
        def __init__(self):
            self.conv1 = Block()
            self.conv2 = Block()

        def call(self, x):
            return self.conv2(self.conv1(x))

    class Ours(nm.Module):
        def __init__(self):
            self.conv1 = nm.Conv2d(3, 4, (3, 3), pad=(1, 1))
            self.conv2 = nm.Conv2d(4, 4, (3, 3), pad=(1, 1))

    theirs = Net()
    theirs(nn.Variable((1, 3, 8, 8)))
    theirs.save_parameters(str(tmp_path / "theirs.h5"))
    assert list(files.read_parameters(tmp_path / "theirs.h5"))[0] == "@conv1/conv/W"
    ours = Ours()
    ours.load_parameters(tmp_path / "theirs.h5")
    for key, param in theirs.get_parameters().items():
        np.testing.assert_array_equal(ours.state_dict()[key.replace("@", "")], param.d)


@pytest.mark.parametrize("how", [".nnp", ".nnp protobuf", ".nntxt"])
def test_nnp_and_nntxt_files_load(tmp_path, how):
    source = ResUnit(8, 8, name="exported")
    saved = randomize(source)
    x = nn.Variable(X_SHAPE)
    contents = {
        "networks": [
            {
                "name": "net",
                "batch_size": 2,
                "outputs": {"y": source(x, test=True)},
                "names": {"x": x},
            }
        ],
        "executors": [{"name": "run", "network": "net", "data": ["x"], "output": ["y"]}],
    }
    ext, _, parameter_format = how.partition(" ")
    path = str(tmp_path / f"model{ext}")
    if ext == ".nnp":
        save_nnp(path, contents, parameter_format="." + (parameter_format or "h5"))
    else:
        save_nnp(path, contents, include_params=True)
    target = ResUnit(8, 8, name="exported")  # same prefix: the file's keys carry it
    randomize(target, seed=9)
    target.load_parameters(path)
    assert_state(target, saved)
    with pytest.raises(ValueError, match="cannot write"):
        target.save_parameters(path)


# --- in place --------------------------------------------------------------------------------


def test_loading_writes_into_the_existing_variables(tmp_path):
    unit = ResUnit(8, 16)
    x_data = np.random.default_rng(0).standard_normal(X_SHAPE).astype(np.float32)
    saved = randomize(unit, seed=1)
    expected = output(unit, x_data)
    unit.save_parameters(tmp_path / "unit.h5")
    randomize(unit, seed=2)

    y = unit(nn.Variable.from_numpy_array(x_data), test=True)  # built before the load
    params = unit.get_parameters(grad_only=False)
    solver = S.Sgd(lr=1.0)
    solver.set_parameters(unit.get_parameters())
    unit.load_parameters(tmp_path / "unit.h5")

    for key, param in unit.get_parameters(grad_only=False).items():
        assert param is params[key]
    y.forward()
    np.testing.assert_allclose(y.d, expected, rtol=1e-5, atol=1e-6)
    solver.zero_grad()
    for param in unit.get_parameters().values():
        param.g = 1.0
    solver.update()  # the solver steps the loaded values
    for key, param in unit.get_parameters().items():
        np.testing.assert_allclose(param.d, saved[key] - 1.0, rtol=1e-6, atol=1e-6)


def test_loading_keeps_need_grad(tmp_path):
    unit = ResUnit(8, 8)
    unit.save_parameters(tmp_path / "unit.h5")  # need_grad=True for the weights
    unit.conv0.freeze()
    unit.load_parameters(tmp_path / "unit.h5")
    assert not any(p.need_grad for p in unit.conv0.get_parameters(grad_only=False).values())
    assert all(p.need_grad for p in unit.conv1.get_parameters().values())


# --- key rules -----------------------------------------------------------------------------


def test_submodule_checkpoint_loads_into_another_models_submodule(tmp_path):
    class Encoder(nm.Module):
        def __init__(self):
            self.block = ResUnit(8, 8)

    class Classifier(nm.Module):
        def __init__(self):
            self.stages = [nm.Conv2d(8, 8, (1, 1)), ResUnit(8, 8)]

    encoder, classifier = Encoder(), Classifier()
    saved = randomize(encoder.block, seed=1)
    randomize(classifier, seed=2)
    encoder.block.save_parameters(tmp_path / "block.h5")
    classifier.stages[1].load_parameters(tmp_path / "block.h5")
    assert classifier.stages[1].prefix == "classifier/stages/1"
    assert_state(classifier.stages[1], saved)
    assert_state(encoder.block, saved)


def test_a_relative_match_wins_over_the_full_prefix_reading():
    class Outer(nm.Module):
        def __init__(self):
            self.net = nm.Affine(2, 2)  # relative "net/affine/W"; full "net/net/affine/W"

    model = Outer(name="net")
    params = model.get_parameters()
    state = {"net/affine/W": np.full((2, 2), 1.0), "net/affine/b": np.full(2, 1.0)}
    model.load_state_dict(state)
    assert params["net/affine/W"].d[0, 0] == 1.0
    full = {"net/" + key: value * 2 for key, value in state.items()}
    model.load_state_dict(full)
    assert params["net/affine/W"].d[0, 0] == 2.0


def test_two_file_keys_on_one_parameter_are_an_error_even_when_not_strict():
    unit = ResUnit(8, 8)
    state = unit.state_dict()
    state["res_unit/conv0/conv/W"] = state["conv0/conv/W"] + 1
    before = snapshot()
    for strict in (True, False):
        with pytest.raises(checkpoint.CheckpointError, match="'conv0/conv/W', 'res_unit/conv0"):
            unit.load_state_dict(state, strict=strict)
    assert_same(before, snapshot())


def test_a_mismatch_report_lists_everything_by_full_name():
    unit = ResUnit(8, 16, name="net")
    unit(nn.Variable(X_SHAPE))  # called: every key it does not know is unexpected
    state = unit.state_dict()
    del state["conv0/conv/W"], state["bn2/bn/var"]
    state["conv1/conv/W"] = np.zeros((1, 2, 3))
    state["bn1/bn/mean"] = state["bn1/bn/mean"].astype(np.int32).astype("U8")
    state["extra/W"] = np.zeros(3)
    state["conv2/conv/bias"] = np.zeros(3)
    before = snapshot()
    with pytest.raises(checkpoint.CheckpointError) as raised:
        unit.load_state_dict(state)
    message = str(raised.value)
    for text in (
        "ResUnit 'net': the state dict does not fit; nothing was loaded",
        "net/conv0/conv/W",
        "net/bn2/bn/var",
        "net/extra/W",
        "net/conv2/conv/bias",
        "net/conv1/conv/W: file (1, 2, 3) float64, module (4, 4, 3, 3) float32",
        "net/bn1/bn/mean: file (1, 4, 1, 1) <U8",
        "strict=False",
    ):
        assert text in message
    assert raised.value.result == (
        ["conv0/conv/W", "bn2/bn/var"],
        ["extra/W", "conv2/conv/bias"],
        ["conv1/conv/W", "bn1/bn/mean"],
    )
    assert_same(before, snapshot())

    result = unit.load_state_dict(state, strict=False)
    assert result == raised.value.result
    after = snapshot()
    assert np.array_equal(after["net/conv0/conv/W"], before["net/conv0/conv/W"])
    assert np.array_equal(after["net/conv2/conv/W"], state["conv2/conv/W"])
    assert "net/extra/W" not in after


def test_an_empty_file_says_so(tmp_path):
    unit = ResUnit(8, 8)
    (tmp_path / "empty.protobuf").write_bytes(b"")
    with pytest.raises(checkpoint.CheckpointError, match="holds no parameters"):
        unit.load_parameters(tmp_path / "empty.protobuf")


# --- load, then build ---------------------------------------------------------------------


class PFNet(nm.Module):
    """A refactor of PF code: the unchanged PF calls moved into __call__."""

    def __call__(self, x):
        return PF.affine(PF.affine(x, 4, name="fc1"), 2, name="fc2")


def _pf_net_checkpoint(path, prefix, shape=(3, 4)):
    nn.clear_parameters()
    with nn.parameter_scope(prefix):
        x = nn.Variable((2, 3))
        PF.affine(PF.affine(x, shape[1], name="fc1"), 2, name="fc2")
    for i, param in enumerate(nn.get_parameters(grad_only=False).values()):
        param.d = i + 1.0
    values = snapshot()
    nn.save_parameters(str(path))
    nn.clear_parameters()
    return values


@pytest.mark.parametrize("prefix", ["pf_net", ""])
def test_a_module_with_pf_code_takes_the_values_before_its_first_call(tmp_path, prefix):
    values = _pf_net_checkpoint(tmp_path / "pf.h5", prefix)
    net = PFNet()
    assert net.load_parameters(tmp_path / "pf.h5") == ([], [], [])
    params = net.get_parameters()
    assert list(params) == ["fc1/affine/W", "fc1/affine/b", "fc2/affine/W", "fc2/affine/b"]
    net(nn.Variable((2, 3)))  # PF finds the loaded values
    assert net.get_parameters() == params
    for key, value in values.items():
        np.testing.assert_array_equal(params[key[len(prefix) + 1 :] if prefix else key].d, value)
    net.save_parameters(tmp_path / "again.h5")
    assert list(files.read_parameters(tmp_path / "again.h5")) == list(params)


def test_load_then_build_checks_shapes_at_the_first_call(tmp_path):
    _pf_net_checkpoint(tmp_path / "pf.h5", "pf_net", shape=(3, 5))
    net = PFNet()
    net.load_parameters(tmp_path / "pf.h5")
    with pytest.raises(ValueError, match=r"\(3, 5\) is different from .* \(3, 4\)"):
        net(nn.Variable((2, 3)))


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_a_stop_request_during_the_first_call_after_a_load_stays_itself(
    tmp_path, monkeypatch, stop
):
    _pf_net_checkpoint(tmp_path / "pf.h5", "pf_net")
    net = PFNet()
    net.load_parameters(tmp_path / "pf.h5")
    affine, calls = PF.affine, []

    def affine_then_stop(*args, **kwargs):  # Ctrl-C or sys.exit in the middle of the call
        calls.append(1)
        if len(calls) == 2:
            raise stop()
        return affine(*args, **kwargs)

    monkeypatch.setattr(PF, "affine", affine_then_stop)
    with pytest.raises(stop) as caught:
        net(nn.Variable((2, 3)))
    assert type(caught.value) is stop  # neither a CheckpointError nor any ValueError
    assert any("undone" in note for note in caught.value.__notes__)
    assert nn.get_parameters(grad_only=False) == {}  # the load was undone, as for any failure


def test_load_then_build_rejects_other_modules_entries_of_a_registry_file(tmp_path):
    with nn.parameter_scope("pf_net"):
        PF.affine(PF.affine(nn.Variable((2, 3)), 4, name="fc1"), 2, name="fc2")
    nn.parameter.get_parameter_or_create("elsewhere/W", (2,))
    nn.save_parameters(str(tmp_path / "all.h5"))
    nn.clear_parameters()
    net = PFNet()
    before = snapshot()
    with pytest.raises(checkpoint.CheckpointError, match="elsewhere/W"):
        net.load_parameters(tmp_path / "all.h5")
    assert_same(before, snapshot())


def test_saving_a_module_that_has_not_created_its_parameters_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="PFNet 'pf_net'.*first call"):
        PFNet().save_parameters(tmp_path / "net.h5")
    assert not os.listdir(tmp_path)


def test_a_layer_rejects_keys_it_does_not_have_even_before_a_call():
    unit = ResUnit(8, 8)  # never called; its layers know their parameters
    state = unit.state_dict()
    state["conv0/conv/extra"] = np.zeros(2)
    with pytest.raises(checkpoint.CheckpointError, match="res_unit/conv0/conv/extra"):
        unit.load_state_dict(state)


class TwoStage(nm.Module):
    """Built through its methods or its children: its own call may never run."""

    def __init__(self):
        self.encoder = PFBody()  # PF code: its keys appear at its first call
        self.decoder = nm.Affine(None, 2)  # sizes from its input: the same

    def __call__(self, x):
        return self.decode(self.encode(x))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, h):
        return self.decoder(h)


def _two_stage_state():
    source = TwoStage()
    source.decode(source.encode(nn.Variable((1, 3))))
    randomize(source, seed=5)
    return source.state_dict()


def _build(model, how):
    x = nn.Variable((1, 3))
    if how == "methods":
        return model.decode(model.encode(x))
    return model.decoder(model.encoder(x))  # the children called directly


@pytest.mark.parametrize("how", ["methods", "children"])
def test_a_strict_load_before_the_first_call_is_checked_whatever_builds_the_graph(how):
    state = _two_stage_state()
    without_decoder = {k: v for k, v in state.items() if not k.startswith("decoder/")}
    model = TwoStage()
    assert model.load_state_dict(without_decoder) == ([], [], [])  # cannot know yet
    with pytest.raises(
        checkpoint.CheckpointError,
        match=r"missing from the file \(2\):\n    two_stage/decoder/affine/W",
    ):
        _build(model, how)
    assert nn.get_parameters(grad_only=False) == {}  # the whole load was undone

    unused = dict(state, **{"encoder/extra/W": np.ones(2)})
    model = TwoStage()
    model.load_state_dict(unused)
    with pytest.raises(
        checkpoint.CheckpointError,
        match=r"not used by the call \(1\):\n    two_stage_1/encoder/extra/W",
    ):
        _build(model, how)


class _Wrapper(nm.Module):
    def __init__(self, inner):
        self.inner = inner

    def __call__(self, x):
        return self.inner.decode(self.inner.encode(x))


@pytest.mark.parametrize("call", ["the holder", "the loaded model"])
def test_a_load_before_the_first_call_is_still_checked_once_another_model_holds_the_loaded_one(
    call,
):
    # docs/concepts.md: a pretrained model loaded with its own load_parameters takes the
    # loaded values along when held, checked at its first call.
    state = _two_stage_state()
    model = TwoStage()
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("decoder/")})
    wrapper = _Wrapper(model)  # the same Variables move under wrapper/inner
    target = wrapper if call == "the holder" else model
    with pytest.raises(checkpoint.CheckpointError, match="wrapper/inner/decoder/affine/W"):
        target(nn.Variable((1, 3)))
    assert nn.get_parameters(grad_only=False) == {}  # the whole load was undone

    fits = TwoStage()
    fits.load_state_dict(state)
    _Wrapper(fits)(nn.Variable((1, 3)))
    for key, value in fits.state_dict().items():
        np.testing.assert_array_equal(value, state[key])


def test_listing_before_the_first_call_does_not_end_the_check():
    state = _two_stage_state()
    model = TwoStage()
    model.load_state_dict({k: v for k, v in state.items() if k != "decoder/affine/b"})
    assert list(model.get_parameters()) == [
        "encoder/affine/W",
        "encoder/affine/b",
        "decoder/affine/W",
    ]
    model.state_dict()
    with pytest.raises(checkpoint.CheckpointError, match="two_stage/decoder/affine/b"):
        _build(model, "methods")


def test_a_method_building_part_of_the_model_reports_no_unused_keys():
    state = _two_stage_state()
    model = TwoStage()
    model.load_state_dict(state)
    h = model.encode(nn.Variable((1, 3)))  # the decoder's keys are not used yet: no error
    assert list(model.get_parameters()) == list(state)
    model.decode(h)  # built later: the rest of the check passes
    model(nn.Variable((1, 3)))
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[key])


def test_an_error_the_model_catches_inside_its_call_leaves_the_load_in_place():
    class Tolerant(nm.Module):
        def __init__(self):
            self.body = PFBody()

        def __call__(self, x):
            try:
                self.body(nn.Variable((1, 5)))  # a wrong shape, caught by the model's own code
            except ValueError:
                pass
            return self.body(x)

    state = {"body/affine/W": np.full((3, 4), 2.0), "body/affine/b": np.full(4, 3.0)}
    model = Tolerant()
    model.load_state_dict(state)
    model(nn.Variable((1, 3)))
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[key])


# --- all or nothing ---------------------------------------------------------------------------


def assert_same(before, after):
    assert list(before) == list(after)
    for key in before:
        assert np.array_equal(before[key], after[key]), key


def _failing_after(count, function):
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > count:
            raise MemoryError("injected")
        return function(*args, **kwargs)

    return failing


class PFBody(nm.Module):
    def __call__(self, x):
        return PF.affine(x, 4)


class Mixed(nm.Module):
    """Layers and a module with PF code: one load both writes in place and places."""

    def __init__(self):
        self.body = PFBody()
        self.head = nm.Affine(4, 2)

    def __call__(self, x):
        return self.head(self.body(x))


def test_a_mixed_module_takes_pf_values_before_its_first_call():
    model = Mixed()
    state = {
        "body/affine/W": np.ones((3, 4)),
        "body/affine/b": np.ones(4),
        "head/affine/W": np.ones((4, 2)),
        "head/affine/b": np.ones(2),
    }
    model.load_state_dict(state)
    assert list(model.body.get_parameters()) == ["affine/W", "affine/b"]
    y = model(nn.Variable.from_numpy_array(np.ones((1, 3))))
    y.forward()
    np.testing.assert_allclose(y.d, [[17.0, 17.0]])  # all ones: 4 * (3 + 1) + 1


def test_pf_code_beside_children_takes_its_values_before_the_first_call():
    class Inline(nm.Module):
        def __init__(self):
            self.head = nm.Affine(4, 2)

        def __call__(self, x):
            return self.head(PF.affine(x, 4, name="body"))

    model = Inline()
    state = {
        "body/affine/W": np.ones((3, 4)),
        "body/affine/b": np.ones(4),
        "head/affine/W": np.ones((4, 2)),
        "head/affine/b": np.ones(2),
    }
    model.load_state_dict(state)  # its own PF code's keys: checked at its first call
    y = model(nn.Variable.from_numpy_array(np.ones((1, 3))))
    y.forward()
    np.testing.assert_allclose(y.d, [[17.0, 17.0]])  # all ones: 4 * (3 + 1) + 1
    model.load_state_dict(state)  # after a call, it knows them


class Stack(nm.Module):
    def __init__(self):
        self.layers = [nm.Affine(4, 4) for _ in range(4)]


@pytest.mark.parametrize("as_views", [False, True], ids=["variables", "numpy views"])
@pytest.mark.parametrize("how", ["swap", "shift"])
def test_the_modules_own_arrays_under_other_keys_load_as_given(how, as_views):
    model = Stack()
    before = randomize(model, seed=3)
    params = model.get_parameters(grad_only=False)
    order = [1, 0, 2, 3] if how == "swap" else [1, 2, 3, 0]  # layer i takes layer order[i]'s
    state = {}
    for key in params:
        index = int(key.split("/")[1])
        source = params[key.replace(f"layers/{index}/", f"layers/{order[index]}/")]
        state[key] = source.d if as_views else source  # .d: a view of the live array
    model.load_state_dict(state)
    for key, param in params.items():
        index = int(key.split("/")[1])
        expected = before[key.replace(f"layers/{index}/", f"layers/{order[index]}/")]
        np.testing.assert_array_equal(param.d, expected, err_msg=key)


def test_a_failure_while_placing_values_undoes_every_placement(tmp_path, monkeypatch):
    model = Mixed()
    model.get_parameters()  # the layers' own, created at first use
    state = {
        "body/affine/W": np.ones((3, 4)),
        "body/affine/b": np.ones(4),
        "head/affine/W": np.ones((4, 2)),
        "head/affine/b": np.ones(2),
    }
    before, claims = snapshot(), claims_of(model)
    monkeypatch.setattr(checkpoint, "_place", _failing_after(1, checkpoint._place))
    with pytest.raises(MemoryError, match="injected"):
        model.load_state_dict(state)
    assert_same(before, snapshot())
    assert claims_of(model) == claims
    assert list(nn.get_parameters(grad_only=False)) == [
        "mixed/head/affine/W",
        "mixed/head/affine/b",
    ]
    assert before["mixed/head/affine/W"][0, 0] != 1.0
    monkeypatch.undo()
    model.load_state_dict(state)
    assert set(model.get_parameters()) == set(state)


def test_a_failure_reading_a_placed_value_undoes_everything(tmp_path):
    values = _pf_net_checkpoint(tmp_path / "pf.h5", "pf_net")  # noqa: F841
    net = PFNet()
    with files.open_parameters(tmp_path / "pf.h5") as stored:
        stored["pf_net/fc2/affine/W"]._read_into = _failing_after(0, None)
        with pytest.raises(MemoryError, match="injected"):
            checkpoint._load(net, stored, "pf.h5", strict=True)
    assert nn.get_parameters(grad_only=False) == {}
    assert claims_of(net) == {"": {}}


def _interrupt_at_read(param):
    """Makes the read of ``param``'s values send Ctrl-C first."""
    read = param._read_into

    def interrupted(out):
        os.kill(os.getpid(), signal.SIGINT)
        read(out)

    param._read_into = interrupted


def _ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_during_the_in_place_writes_is_delivered_after_the_last_one(
    tmp_path, monkeypatch
):
    unit = ResUnit(8, 8)
    saved = randomize(unit, seed=1)
    unit.save_parameters(tmp_path / "unit.h5")
    randomize(unit, seed=2)
    writes = at_write(monkeypatch, 2, _ctrl_c)
    with pytest.raises(KeyboardInterrupt) as caught:
        unit.load_parameters(tmp_path / "unit.h5")
    assert len(writes) == len(saved)
    assert_state(unit, saved)  # all of it, then the interrupt
    assert not getattr(caught.value, "__notes__", [])  # the load itself went well


def test_ctrl_c_during_the_writes_of_a_load_then_build_load_keeps_it(tmp_path, monkeypatch):
    model = Mixed()
    model.get_parameters()  # the layers' own, created at first use
    state = {
        "body/affine/W": np.full((3, 4), 2.0),
        "body/affine/b": np.full(4, 2.0),
        "head/affine/W": np.full((4, 2), 2.0),
        "head/affine/b": np.full(2, 2.0),
    }
    at_write(monkeypatch, 2, _ctrl_c)  # while writing head/affine/b in place
    with pytest.raises(KeyboardInterrupt):
        model.load_parameters(_saved(tmp_path, state))
    assert all((param.d == 2.0).all() for param in model.get_parameters().values())
    model(nn.Variable((1, 3)))  # the first call finds the load whole, and keeps it
    assert all((param.d == 2.0).all() for param in model.get_parameters().values())


def _saved(tmp_path, state):
    files.write_parameters(tmp_path / "state.h5", state)
    return tmp_path / "state.h5"


def test_ctrl_c_right_after_the_file_is_checked_says_nothing_was_changed(tmp_path, monkeypatch):
    unit = ResUnit(8, 8)
    randomize(unit, seed=1)
    unit.save_parameters(tmp_path / "unit.h5")
    before = randomize(unit, seed=2)

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "deliver_pending", interrupted)
    with pytest.raises(KeyboardInterrupt) as caught:
        unit.load_parameters(tmp_path / "unit.h5")
    assert_state(unit, before)
    assert any("nothing was changed" in note for note in caught.value.__notes__)


def test_ctrl_c_while_the_values_are_checked_stops_the_load_at_once(tmp_path):
    unit = ResUnit(8, 8)
    randomize(unit, seed=1)
    unit.save_parameters(tmp_path / "unit.h5")
    before = randomize(unit, seed=2)
    with files.open_parameters(tmp_path / "unit.h5") as stored:
        _interrupt_at_read(stored["conv1/conv/W"])
        with pytest.raises(KeyboardInterrupt) as caught:
            checkpoint._load(unit, stored, "unit.h5", strict=True)
    assert_state(unit, before)
    assert any("nothing was changed" in note for note in caught.value.__notes__)


@pytest.mark.parametrize(
    "failure",
    ["missing", "unexpected", "mismatched", "conflict", "foreign", "truncated", "extension"],
)
def test_every_failure_changes_nothing(tmp_path, failure):
    class Both(nm.Module):  # eager layers and PF code: both kinds of load at once
        def __init__(self):
            self.unit = ResUnit(8, 8)
            self.head = PFBody()

        def __call__(self, x):
            return self.head(self.unit(x))

    source = Both(name="m")
    source(nn.Variable(X_SHAPE))
    randomize(source, seed=1)
    state = source.state_dict()
    nn.clear_parameters()
    model = Both(name="m")
    model.get_parameters()
    path = tmp_path / "m.h5"
    if failure == "missing":
        del state["unit/bn0/bn/var"]
    elif failure == "unexpected":
        state["unit/conv0/extra"] = np.zeros(1)
    elif failure == "mismatched":
        state["unit/conv0/conv/W"] = np.zeros(3)
    elif failure == "conflict":
        state["m/unit/conv0/conv/W"] = state["unit/conv0/conv/W"]
    files.write_parameters(path, state)
    if failure == "foreign":
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(2000))
    elif failure == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    elif failure == "extension":
        path = path.rename(tmp_path / "m.hdf5")
    before, claims = snapshot(), claims_of(model)
    with pytest.raises(ValueError, match=r"Both 'm'(.|\n)*m\.h"):
        model.load_parameters(path)
    assert_same(before, snapshot())
    assert claims_of(model) == claims


# --- corrupted files -----------------------------------------------------------------------


class Small(nm.Module):
    def __init__(self):
        self.conv = nm.Conv2d(3, 4, (3, 3))
        self.bn = nm.BatchNorm2d(4)


@pytest.mark.parametrize("ext", [".h5", ".protobuf"])
def test_truncated_and_bit_flipped_files_fail_cleanly_or_load(tmp_path, ext):
    model = Small()
    good_path = tmp_path / f"good{ext}"
    model.save_parameters(good_path)
    good = good_path.read_bytes()
    rng = np.random.default_rng(0)
    bad_path = tmp_path / f"bad{ext}"
    cases = [good[:n] for n in range(0, len(good), max(1, len(good) // 40))]
    for position in rng.integers(0, len(good), 100):
        flipped = bytearray(good)
        flipped[position] ^= 1 << int(rng.integers(0, 8))
        cases.append(bytes(flipped))
    failures = 0
    for data in cases:
        bad_path.write_bytes(data)
        before = snapshot()
        try:
            model.load_parameters(bad_path)
        except (files.ParameterFileError, checkpoint.CheckpointError) as error:
            failures += 1
            assert "Small 'small'" in str(error) and f"bad{ext}" in str(error)
            assert_same(before, snapshot())
        else:  # a flipped bit among the values loads as another value (no checksums)
            model.load_parameters(good_path)
    assert failures >= 40  # every truncation, and flips in the structure


# --- atomic save ------------------------------------------------------------------------------


def test_a_failed_save_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    unit = ResUnit(8, 8)
    path = tmp_path / "unit.h5"
    unit.save_parameters(path)
    os.chmod(path, 0o640)
    previous = path.read_bytes()
    monkeypatch.setattr(files, "written_values", _failing_after(5, files.written_values))
    with pytest.raises(MemoryError):
        unit.save_parameters(path)
    assert path.read_bytes() == previous
    assert os.listdir(tmp_path) == ["unit.h5"]
    monkeypatch.undo()
    randomize(unit)
    unit.save_parameters(path)
    assert path.read_bytes() != previous
    assert os.stat(path).st_mode & 0o777 == 0o640  # replacing keeps the file's mode
    assert os.listdir(tmp_path) == ["unit.h5"]
