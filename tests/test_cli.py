"""The command line on real files: written by PF code, by our modules, by NNabla's nn.Module and
by NNabla's experimental parametric-function classes."""

import doctest
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from models import ResUnit, res_unit_pf
from nnabla.experimental.parametric_function_class.affine import Affine as ExpAffine
from nnabla.experimental.parametric_function_class.batch_normalization import (
    BatchNorm2d as ExpBatchNorm2d,
)
from nnabla.experimental.parametric_function_class.convolution import Conv2d as ExpConv2d
from nnabla.experimental.parametric_function_class.deconvolution import Deconv2d as ExpDeconv2d
from nnabla.experimental.parametric_function_class.module import Module as ExpModule

import nnabla_modules as nm
from nnabla_modules.cli import main
from nnabla_modules.export import export_nnp

# --- the files -----------------------------------------------------------------------


def randomize(params, seed=0):
    rng = np.random.RandomState(seed)
    for param in params.values():
        # Positive (valid running variances too) and float32 (a float64 array would
        # turn the parameter into float64).
        param.d = rng.uniform(0.5, 1.5, param.shape).astype(np.float32)


@pytest.fixture
def pf_file(tmp_path):
    """``res_unit/...`` keys, as the old PF code saved them with nn.save_parameters."""
    with nn.parameter_scope("res_unit"):
        res_unit_pf(nn.Variable((2, 8, 4, 4)), 8, 16)
    randomize(nn.get_parameters(grad_only=False))
    path = str(tmp_path / "pf.h5")
    nn.save_parameters(path, nn.get_parameters(grad_only=False))
    nn.clear_parameters()
    return path


@pytest.fixture
def module_file(tmp_path):
    """Keys relative to the module, as Module.save_parameters writes them."""
    unit = ResUnit(8, 16)
    randomize(unit.get_parameters(grad_only=False))
    path = str(tmp_path / "module.h5")
    unit.save_parameters(path)
    return path


class NnConvBn(nn.Module):
    def __init__(self, outmaps):
        self.outmaps = outmaps

    def call(self, x, test=False):
        h = PF.convolution(x, self.outmaps, (3, 3), pad=(1, 1))
        return PF.batch_normalization(h, batch_stat=not test)


class NnNet(nn.Module):
    def __init__(self):
        self.a = NnConvBn(4)
        self.b = NnConvBn(8)

    def call(self, x, test=False):
        return self.b(self.a(x, test), test)


class ConvBn(nm.Module):
    """The refactored NnConvBn: the same PF code inside __call__."""

    def __init__(self, outmaps):
        self.outmaps = outmaps

    def __call__(self, x, test=False):
        h = PF.convolution(x, self.outmaps, (3, 3), pad=(1, 1))
        return PF.batch_normalization(h, batch_stat=not test)


class Net(nm.Module):
    def __init__(self):
        self.a = ConvBn(4)
        self.b = ConvBn(8)

    def __call__(self, x, test=False):
        return self.b(self.a(x, test), test)


class ExpNet(ExpModule):
    """A model of NNabla's experimental classes (their Deconvolution runs only when square)."""

    def __init__(self):
        self.conv0 = ExpConv2d(3, 4, (3, 3), pad=(1, 1))
        self.bn0 = ExpBatchNorm2d(4)
        self.up = ExpDeconv2d(4, 4, (2, 2), stride=(2, 2))
        self.fc = ExpAffine(4 * 8 * 8, 5)

    def __call__(self, x, test=False):
        h = F.relu(self.bn0(self.conv0(x), test))
        return self.fc(self.up(h))


class PfcNet(nm.Module):
    """ExpNet ported to nnabla_modules: the same attribute names."""

    def __init__(self):
        self.conv0 = nm.Conv2d(3, 4, (3, 3), pad=(1, 1))
        self.bn0 = nm.BatchNorm2d(4)
        self.up = nm.Deconv2d(4, 4, (2, 2), stride=(2, 2))
        self.fc = nm.Affine(4 * 8 * 8, 5)

    def __call__(self, x, test=False):
        h = F.relu(self.bn0(self.conv0(x), test))
        return self.fc(self.up(h))


X = np.random.RandomState(5).randn(2, 3, 4, 4).astype(np.float32)


def run(*argv):
    return main([str(a) for a in argv])


def run_json(capsys, *argv):
    status = run(*argv, "--json")
    return status, json.loads(capsys.readouterr().out)


def has_row(text, *cells):
    """True when a line of ``text`` holds exactly these whitespace-separated cells."""
    return any(
        line.split() == [c for cell in cells for c in cell.split()] for line in text.splitlines()
    )


def forward(y):
    y.forward()
    return y.d.copy()


# --- inspect -------------------------------------------------------------------------


def test_inspect_a_pf_file_shows_the_tree_and_counts_per_scope(pf_file, capsys):
    assert run("inspect", pf_file) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"{pf_file}: .h5, 24 parameters, 1,592 values (1,512 with need_grad)"
    assert lines[2].split() == ["Key", "Shape", "Dtype", "need_grad", "Params"]
    assert lines[4].split() == ["res_unit/", "1,592"]
    assert lines[5].split() == ["conv0/", "36"]
    assert lines[6].split() == ["conv/", "36"]
    assert lines[7].split() == ["W", "(4,", "8,", "1,", "1)", "float32", "True", "32"]
    assert has_row(out, "mean", "(1, 4, 1, 1)", "float32", "False", "4")


def test_inspect_json_lists_every_parameter_and_scope(pf_file, capsys):
    status, info = run_json(capsys, "inspect", pf_file)
    assert status == 0
    assert info["format"] == ".h5" and info["count"] == 24 and info["total"] == 1592
    assert info["parameters"][0] == {
        "key": "res_unit/conv0/conv/W", "shape": [4, 8, 1, 1], "dtype": "float32",
        "need_grad": True, "size": 32,
    }  # fmt: skip
    assert info["scopes"]["res_unit"] == 1592
    assert info["scopes"]["res_unit/shortcut_conv/conv"] == 16 * 8 * 9 + 16


def test_inspect_reads_protobuf_nnp_and_nn_module_files(tmp_path, module_file, capsys):
    unit = ResUnit(8, 16, name="exported")
    unit.load_parameters(module_file)
    unit.save_parameters(str(tmp_path / "module.protobuf"))
    export_nnp(unit, str(tmp_path / "module.nnp"), (2, 8, 4, 4))
    listings = []
    for name in ("module.h5", "module.protobuf", "module.nnp"):
        _, info = run_json(capsys, "inspect", tmp_path / name)
        listings.append(info["parameters"])
    assert listings[0] == listings[1] == listings[2]
    net = NnNet()
    net(nn.Variable((2, 3, 4, 4)))
    net.save_parameters(str(tmp_path / "nn_module.h5"))
    _, info = run_json(capsys, "inspect", tmp_path / "nn_module.h5")
    assert info["parameters"][0]["key"] == "@a/conv/W"
    assert info["scopes"]["@a"] == 4 * 3 * 9 + 4 + 4 * 4


def test_inspect_depth_shows_scopes_only(pf_file, capsys):
    assert run("inspect", pf_file, "--depth", 2) == 0
    rows = capsys.readouterr().out.splitlines()[4:]
    assert [row.split()[0] for row in rows[:3]] == ["res_unit/", "conv0/", "bn0/"]
    assert len(rows) == 1 + 8


def test_inspect_depth_0_prints_the_file_line_alone(pf_file, capsys):
    assert run("inspect", pf_file, "--depth", 0) == 0  # as summary(depth=0): the whole alone
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{pf_file}: .h5, 24 parameters")
    with pytest.raises(SystemExit, match="2"):
        run("inspect", pf_file, "--depth", -1)
    assert "--depth: must be >= 0" in capsys.readouterr().err


def test_json_output_is_one_compact_object_per_line(pf_file, module_file, tmp_path, capsys):
    commands = (
        ("inspect", pf_file),
        ("diff", pf_file, module_file),
        ("convert", pf_file, tmp_path / "out.h5"),
    )
    for argv in commands:
        run(*argv, "--json")
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 1, argv  # JSON Lines: one object, one line
        assert isinstance(json.loads(lines[0]), dict) and ", " not in lines[0]


def test_inspect_errors_name_the_file(tmp_path, capsys):
    assert run("inspect", tmp_path / "missing.h5") == 2
    assert "missing.h5" in capsys.readouterr().err
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not a parameter file")
    assert run("inspect", garbage) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnabla-modules inspect: error: ") and "garbage.h5" in err
    assert run("inspect", tmp_path / "model.txt") == 2
    assert "cannot read the format '.txt'" in capsys.readouterr().err
    assert run("inspect", tmp_path) == 2
    assert f"error: '{tmp_path}' is a directory, not a parameter file" in capsys.readouterr().err


# --- diff ----------------------------------------------------------------------------


def test_diff_of_equal_files_in_two_formats_is_status_0(tmp_path, pf_file, capsys):
    nn.load_parameters(pf_file)
    nn.save_parameters(str(tmp_path / "pf.protobuf"))
    assert run("diff", pf_file, tmp_path / "pf.protobuf") == 0
    out = capsys.readouterr().out
    assert "Largest absolute difference of shared values: 0 (res_unit/conv0/conv/W)" in out
    assert out.rstrip().endswith("Equal.")


def test_diff_reports_keys_only_in_one_file_and_hints_the_prefix(pf_file, module_file, capsys):
    assert run("diff", pf_file, module_file) == 1
    out = capsys.readouterr().out
    assert "Only in A (24):" in out and "Only in B (24):" in out
    assert "Hint: A's keys are B's under 'res_unit': convert A with --strip-prefix res_unit" in out
    assert out.rstrip().endswith("Different.")


@pytest.mark.parametrize(
    "a, b",
    [
        (np.array([2**62, 5]), np.array([2**62 + 1, 5])),  # equal once in float64
        (np.array([2**64 - 1], np.uint64), np.array([2**64 - 2], np.uint64)),
        (np.array([np.longdouble(1) + np.longdouble(2) ** -60]), np.ones(1, np.longdouble)),
    ],
    ids=["int64", "uint64", "longdouble"],
)
def test_diff_tells_values_apart_that_float64_cannot(tmp_path, a, b, capsys):
    for name, values in (("a.h5", a), ("b.h5", b)):
        nm.files.write_parameters(tmp_path / name, {"fc/W": values})
    status, report = run_json(capsys, "diff", tmp_path / "a.h5", tmp_path / "b.h5")
    assert status == 1 and report["differing_elements"] == 1, report
    assert run("diff", tmp_path / "a.h5", tmp_path / "a.h5") == 0


def test_diff_reports_values_shapes_and_need_grad(tmp_path, module_file, capsys):
    unit = ResUnit(8, 16, name="changed")
    unit.load_parameters(module_file)
    params = unit.get_parameters(grad_only=False)
    params["conv1/conv/W"].d += 0.25
    params["bn0/bn/beta"].d -= 0.5
    changed = str(tmp_path / "changed.h5")
    unit.save_parameters(changed)
    assert run("diff", module_file, changed) == 1
    out = capsys.readouterr().out
    assert "Values differ (2 of 24 compared; 148 of 1,592 elements):" in out
    assert re.search(r"bn0/bn/beta\s+4 of 4\s+0.5\s+-0.5\s+-0.5\s+-0.5\n", out), out
    assert "Largest absolute difference of shared values: 0.5 (bn0/bn/beta)" in out
    assert run("diff", module_file, changed, "--atol", 0.6) == 0
    assert run("diff", module_file, changed, "--atol", 0.6, "--rtol", 0) == 0
    capsys.readouterr()
    status, report = run_json(capsys, "diff", module_file, changed)
    (conv1,) = [e for e in report["value_differences"] if e["key"] == "conv1/conv/W"]
    assert conv1["differing"] == conv1["size"] == 144
    assert conv1["min_diff"] == pytest.approx(0.25, abs=1e-6)
    assert conv1["mean_diff"] == pytest.approx(0.25, abs=1e-6)
    assert report["differing_elements"] == 148

    other = ResUnit(8, 8, name="other")
    other.get_parameters()["conv0/conv/W"].need_grad = False
    other.save_parameters(str(tmp_path / "other.h5"))
    status, report = run_json(capsys, "diff", module_file, tmp_path / "other.h5")
    assert status == 1 and not report["equal"]
    assert [e["key"] for e in report["only_in_a"]] == [
        "shortcut_conv/conv/W", "shortcut_conv/conv/b", "shortcut_bn/bn/beta",
        "shortcut_bn/bn/gamma", "shortcut_bn/bn/mean", "shortcut_bn/bn/var",
    ]  # fmt: skip
    assert {"key": "conv2/conv/W", "a": [16, 4, 1, 1], "b": [8, 4, 1, 1]} in report[
        "shape_mismatches"
    ]
    assert report["need_grad_mismatches"] == [{"key": "conv0/conv/W", "a": True, "b": False}]


# --- convert -------------------------------------------------------------------------


def test_convert_a_pf_file_into_a_module_file(tmp_path, pf_file, capsys):
    out = str(tmp_path / "stripped.h5")
    assert run("convert", pf_file, out, "--strip-prefix", "res_unit") == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{pf_file} -> {out}: wrote 24 parameters, 24 renamed, 0 transposed")
    assert has_row(text, "res_unit/conv0/conv/W", "->", "conv0/conv/W", "(4, 8, 1, 1)")
    unit = ResUnit(8, 16, name="loaded")
    unit.load_parameters(out)
    nn.load_parameters(pf_file)  # the PF original, under res_unit/
    for key, param in unit.get_parameters(grad_only=False).items():
        assert np.array_equal(param.d, nn.get_parameters(grad_only=False)["res_unit/" + key].d)


def test_convert_a_module_file_back_for_the_pf_code(tmp_path, pf_file, module_file, capsys):
    out = str(tmp_path / "for_pf.protobuf")
    assert run("convert", module_file, out, "--add-prefix", "net/res_unit", "--quiet") == 0
    assert capsys.readouterr().out == ""
    nn.clear_parameters()
    nn.load_parameters(out)
    assert list(nn.get_parameters(grad_only=False))[0] == "net/res_unit/conv0/conv/W"
    assert run("convert", out, tmp_path / "again.h5", "--strip-prefix", "net") == 0
    capsys.readouterr()
    # Both fixtures drew their values from one seed in one key order: the same file.
    assert run("diff", tmp_path / "again.h5", pf_file) == 0


def test_convert_maps_are_regexes_applied_in_order(tmp_path, module_file, capsys):
    out = tmp_path / "mapped.h5"
    argv = ["convert", module_file, out, "--map", r"^conv(\d)/=layer\1/", "--map", "^layer0=first"]
    status, report = run_json(capsys, *argv)
    assert status == 0
    renamed = {e["key"]: e["new_key"] for e in report["parameters"]}
    assert renamed["conv0/conv/W"] == "first/conv/W"
    assert renamed["conv2/conv/b"] == "layer2/conv/b"
    assert renamed["shortcut_conv/conv/W"] == "shortcut_conv/conv/W"


def test_convert_to_keys_hdf5_would_rename_is_an_error_about_the_key(tmp_path, module_file, capsys):
    out = tmp_path / "mapped.h5"
    assert run("convert", module_file, out, "--map", "^=/") == 2
    err = capsys.readouterr().err
    assert "'/conv0/conv/W' cannot be stored in an .h5 file" in err, err
    assert "full disk" not in err and not out.exists()


def test_convert_nn_module_files(tmp_path, capsys):
    reference = NnNet()
    x = nn.Variable.from_numpy_array(X)
    expected = forward(reference(x, test=True))
    randomize(reference.get_parameters(grad_only=False))
    expected = forward(reference(x, test=True))
    source, out = str(tmp_path / "nn_module.h5"), str(tmp_path / "pf.h5")
    reference.save_parameters(source)
    assert run("convert", source, out, "--layout", "nn-module") == 0
    assert has_row(capsys.readouterr().out, "@a/conv/W", "->", "a/conv/W", "(4, 3, 3, 3)")
    net = Net(name="net")
    net.load_parameters(out)  # lazy modules: values wait in the registry for the first call
    np.testing.assert_allclose(forward(net(x, test=True)), expected, rtol=1e-6)


class NnNamed(nn.Module):
    """PF code with a name= inside a module: ``@inner/c1/conv/W``."""

    def __init__(self):
        self.inner = NnConvBn(2)

    def call(self, x):
        return PF.convolution(self.inner(x), 3, (1, 1), name="c1")


def test_convert_writes_nn_module_files_back(tmp_path, capsys):
    """nn.Module file -> plain (module) file -> nn.Module file: the same keys and values."""
    reference = NnNet()
    x = nn.Variable.from_numpy_array(X)
    reference(x, test=True)
    randomize(reference.get_parameters(grad_only=False))
    expected = forward(reference(x, test=True))
    source, plain, back = (str(tmp_path / n) for n in ("nn.h5", "plain.h5", "back.h5"))
    reference.save_parameters(source)
    assert run("convert", source, plain, "--layout", "nn-module", "--quiet") == 0
    assert run("convert", plain, back, "--to-layout", "nn-module") == 0
    assert has_row(capsys.readouterr().out, "a/conv/W", "->", "@a/conv/W", "(4, 3, 3, 3)")
    assert run("diff", source, back) == 0  # the same keys, values, shapes, need_grad
    assert "Equal." in capsys.readouterr().out
    fresh = NnNet()
    fresh(x, test=True)
    fresh.load_parameters(back)  # NNabla's own nn.Module loads it
    np.testing.assert_array_equal(forward(fresh(x, test=True)), expected)

    # the hint of diff, and --module-scope for PF code with name= inside a module
    assert run("diff", plain, source) == 1
    assert "convert A with --to-layout nn-module" in capsys.readouterr().out
    named = NnNamed()
    named(nn.Variable((1, 3, 4, 4)))
    named.save_parameters(source)
    assert run("convert", source, plain, "--layout", "nn-module", "--quiet") == 0
    argv = ("convert", plain, back, "--to-layout", "nn-module", "--module-scope", "inner")
    _, report = run_json(capsys, *argv)
    assert [e["new_key"] for e in report["parameters"]][-2:] == ["c1/conv/W", "c1/conv/b"]
    assert run("diff", source, back) == 0


def test_convert_warns_about_nn_module_keys_and_unused_maps(tmp_path, capsys):
    net = NnNet()
    net(nn.Variable((1, 3, 4, 4)))
    net.save_parameters(str(tmp_path / "nn_module.h5"))
    argv = ("convert", tmp_path / "nn_module.h5", tmp_path / "out.h5", "--map", "nothing=x")
    assert run(*argv) == 0
    err = capsys.readouterr().err
    assert "--map 'nothing=x' changed no key" in err
    assert "--layout nn-module drops the @" in err


def test_convert_experimental_class_files(tmp_path, capsys):
    reference = ExpNet()
    randomize(reference.get_parameters(grad_only=False))
    x = nn.Variable.from_numpy_array(X)
    expected = forward(reference(x, test=True))
    source, out = str(tmp_path / "experimental.h5"), str(tmp_path / "pf.h5")
    nn.save_parameters(source, reference.get_parameters(grad_only=False))
    argv = ["convert", source, out, "--layout", "experimental", "--layer", "up=deconv"]
    status, report = run_json(capsys, *argv)
    assert status == 0
    assert report["layers"] == {"conv0": "conv", "bn0": "bn", "up": "deconv", "fc": "affine"}
    assert [e["new_key"] for e in report["parameters"]] == [
        "conv0/conv/W", "conv0/conv/b", "bn0/bn/beta", "bn0/bn/gamma", "bn0/bn/mean",
        "bn0/bn/var", "up/deconv/W", "up/deconv/b", "fc/affine/W", "fc/affine/b",
    ]  # fmt: skip
    assert not any(e["transposed"] for e in report["parameters"])  # square: as it ran
    model = PfcNet(name="ported")
    model.load_parameters(out)
    np.testing.assert_allclose(forward(model(x, test=True)), expected, rtol=1e-5, atol=1e-6)


def test_convert_transposes_deconvolution_weights_that_never_ran(tmp_path, capsys):
    class Upsampler(ExpModule):
        def __init__(self):
            self.deconv = ExpDeconv2d(4, 8, (3, 3))  # (outmaps, inmaps, ...): F refuses it
            self.norm = ExpBatchNorm2d(8)

    reference = Upsampler()
    weight = reference.deconv.W.d.copy()
    source, out = str(tmp_path / "experimental.h5"), str(tmp_path / "pf.h5")
    nn.save_parameters(source, reference.get_parameters(grad_only=False))
    assert run("convert", source, out, "--layout", "experimental") == 0
    text = capsys.readouterr().out
    assert has_row(text, "deconv/W", "->", "deconv/deconv/W", "(4, 8, 3, 3) (transposed)")
    layer = nm.Deconv2d(4, 8, (3, 3), name="deconv")  # PF's (inmaps, outmaps, *kernel)
    layer.load_parameters(out, strict=False)
    np.testing.assert_array_equal(layer.get_parameters()["deconv/W"].d, weight.swapaxes(0, 1))
    out_never = str(tmp_path / "never.h5")
    assert (
        run(
            "convert",
            source,
            out_never,
            "--layout",
            "experimental",
            "--transpose-deconv",
            "never",
            "--quiet",
        )
        == 0
    )
    _, info = run_json(capsys, "inspect", out_never)
    assert info["parameters"][0]["shape"] == [8, 4, 3, 3]


def test_convert_experimental_root_level_and_unknown_layers(tmp_path, capsys):
    conv = ExpConv2d(3, 2, (1, 1))
    nn.save_parameters(str(tmp_path / "root.h5"), conv.get_parameters())  # keys '/W', '/b'
    _, report = run_json(
        capsys, "convert", tmp_path / "root.h5", tmp_path / "out.h5", "--layout", "experimental"
    )
    assert [e["new_key"] for e in report["parameters"]] == ["conv/W", "conv/b"]
    nn.save_parameters(str(tmp_path / "odd.h5"), {"odd/W": nn.Variable((3,))})
    assert run("convert", tmp_path / "odd.h5", tmp_path / "x.h5", "--layout", "experimental") == 2
    assert "give --layer 'odd=KIND'" in capsys.readouterr().err


def test_convert_refuses_to_overwrite_its_input(tmp_path, module_file, capsys):
    before = open(module_file, "rb").read()
    assert run("convert", module_file, module_file, "--add-prefix", "x") == 2
    link = tmp_path / "link.h5"
    os.symlink(module_file, link)
    assert run("convert", module_file, link, "--add-prefix", "x") == 2
    assert "is IN" in capsys.readouterr().err
    assert open(module_file, "rb").read() == before


def test_convert_errors_change_nothing(tmp_path, module_file, capsys):
    out = tmp_path / "out.h5"
    assert run("convert", module_file, out, "--map", ".*=same") == 2
    assert "two keys would get one name" in capsys.readouterr().err
    assert run("convert", module_file, out, "--strip-prefix", "conv0") == 2
    assert "'bn0/bn/beta' does not start with 'conv0/'" in capsys.readouterr().err
    assert run("convert", module_file, tmp_path / "out.nnp") == 2
    assert "cannot write the format '.nnp'" in capsys.readouterr().err
    assert run("convert", module_file, out, "--map", "(=x") == 2
    assert "not a regular expression" in capsys.readouterr().err
    assert run("convert", module_file, out, "--select", "^conv0/conv/W$", "--map", ".*=") == 2
    assert "the renaming gives the empty or malformed key ''" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["module.h5"]  # no output, no temporary file


def test_convert_select_and_dry_run(tmp_path, module_file, capsys):
    out = tmp_path / "conv0.h5"
    argv = ["convert", module_file, out, "--select", "^conv0/", "--strip-prefix", "conv0"]
    assert run(*argv, "--dry-run") == 0
    assert "would write 2 parameters" in capsys.readouterr().out
    assert not out.exists()
    assert run(*argv) == 0
    layer = nm.Conv2d(8, 4, (1, 1), name="alone")
    layer.load_parameters(str(out))
    unit = ResUnit(8, 16, name="whole")
    unit.load_parameters(module_file)
    assert np.array_equal(
        layer.get_parameters()["conv/W"].d, unit.conv0.get_parameters()["conv/W"].d
    )


# --- the two entry points ------------------------------------------------------------------


def test_python_dash_m_and_the_console_script(module_file):
    commands = [[sys.executable, "-m", "nnabla_modules"]]
    script = shutil.which("nnabla-modules", path=os.path.dirname(sys.executable))
    if script:
        commands.append([script])
    for command in commands:
        done = subprocess.run(
            command + ["inspect", module_file, "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["count"] == 24
    done = subprocess.run(commands[0] + ["--help"], capture_output=True, text=True, check=False)
    assert "inspect" in done.stdout and "convert" in done.stdout


# --- the docs' command lines ------------------------------------------------------------

DOCS_TOOLS = Path(__file__).resolve().parent.parent / "docs" / "tools.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def console_commands(block):
    """``(command, expected output)`` of each ``$ ...`` line of a console block."""
    commands = []
    for line in block.splitlines():
        if line.startswith("$ "):
            commands.append([line[2:], []])
        else:
            commands[-1][1].append(line)
    return [(command, "\n".join(lines) + "\n" if lines else "") for command, lines in commands]


def run_doctest(code, namespace):
    test = doctest.DocTestParser().get_doctest(code, namespace, "docs/tools.md", None, 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    output = []
    runner.run(test, out=output.append, clear_globs=False)
    namespace.update(test.globs)
    assert not runner.failures, "".join(output)


def test_the_command_lines_of_the_docs(tmp_path, monkeypatch, capsys):
    """docs/tools.md: each console block runs, after the Python blocks before it."""
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    checker = doctest.OutputChecker()
    checked = 0
    for language, code in FENCE.findall(DOCS_TOOLS.read_text(encoding="utf-8")):
        if language == "python":
            exec(compile(code, str(DOCS_TOOLS), "exec"), namespace)
        elif language == "pycon":
            run_doctest(code, namespace)
        elif language == "console":
            for command, want in console_commands(code):
                capsys.readouterr()
                program, *argv = shlex.split(command)
                assert program == "nnabla-modules"
                status = main(argv)
                got = capsys.readouterr().out
                assert status == (1 if "Different." in want else 0), command
                assert checker.check_output(want, got, FLAGS), f"$ {command}\n{got}"
                checked += 1
    assert checked >= 6
