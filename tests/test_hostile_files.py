"""Crafted parameter files: links to other files, allocation bombs, overflowing shapes,
deep nesting, names that are not text or hold control characters, huge junk.

Each is a clean ParameterFileError naming the file (or a correct load), found
before any value is allocated, in time linear in the file, with a short message.
See docs/checkpoints.md, "Guarantees and limits".
"""

import bz2
import json
import os
import subprocess
import sys
import time
import tracemalloc
import zipfile

import h5py
import numpy as np
import pytest
from nnabla.utils import nnabla_pb2

import nnabla_modules as nm
from nnabla_modules import files
from nnabla_modules.checkpoint import CheckpointError
from nnabla_modules.cli import main

MB = 1 << 20


def small_layer():
    layer = nm.Affine(4, 3, name="fc")
    layer.get_parameters()
    return layer


def parameter(handle, name, data=None, **kwargs):
    dataset = handle.create_dataset(name, data=data, **kwargs)
    dataset.attrs["need_grad"] = True
    return dataset


def refused(path, match, **kwargs):
    """Loading ``path`` into a (4, 3) layer is a ParameterFileError matching ``match``."""
    layer = small_layer()
    before = {k: v.d.copy() for k, v in layer.get_parameters().items()}
    with pytest.raises(files.ParameterFileError, match=match) as caught:
        layer.load_parameters(path, **kwargs)
    assert len(str(caught.value)) < 1000
    for key, value in layer.get_parameters().items():
        np.testing.assert_array_equal(value.d, before[key])
    return str(caught.value)


# --- links and data in other files ------------------------------------------------------------


def test_a_virtual_dataset_reading_another_file_is_refused(tmp_path):
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as handle:
        handle["data"] = np.arange(12, dtype=np.float32)
    with h5py.File(tmp_path / "vds.h5", "w") as handle:
        vds = handle.create_virtual_dataset("affine/W", _layout(secret, (4, 3)), fillvalue=0)
        vds.attrs["need_grad"] = True
        parameter(handle, "affine/b", np.zeros(3, np.float32))
    refused(tmp_path / "vds.h5", r"vds\.h5.*'affine/W' is a virtual dataset")
    assert main(["convert", str(tmp_path / "vds.h5"), str(tmp_path / "out.h5")]) == 2
    assert not (tmp_path / "out.h5").exists()


def _layout(source, shape):
    layout = h5py.VirtualLayout(shape=shape, dtype=np.float32)
    layout[...] = h5py.VirtualSource(str(source), "data", shape=(int(np.prod(shape)),))[...]
    return layout


def test_external_storage_and_links_are_refused(tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.ones(12, np.float32).tobytes())
    with h5py.File(tmp_path / "external.h5", "w") as handle:
        parameter(handle, "affine/W", shape=(4, 3), dtype=np.float32, external=[(str(raw), 0, 48)])
        parameter(handle, "affine/b", np.zeros(3, np.float32))
    refused(tmp_path / "external.h5", r"'affine/W' keeps its values in external files")

    with h5py.File(tmp_path / "target.h5", "w") as handle:
        parameter(handle, "W", np.ones((4, 3), np.float32))
    with h5py.File(tmp_path / "extlink.h5", "w") as handle:
        handle["affine/W"] = h5py.ExternalLink(str(tmp_path / "target.h5"), "W")
        parameter(handle, "affine/b", np.zeros(3, np.float32))
    refused(tmp_path / "extlink.h5", r"'affine/W' is an external link")

    with h5py.File(tmp_path / "softlink.h5", "w") as handle:
        parameter(handle, "hidden/W", np.ones((4, 3), np.float32))
        handle["affine/W"] = h5py.SoftLink("/hidden/W")
        parameter(handle, "affine/b", np.zeros(3, np.float32))
    refused(tmp_path / "softlink.h5", r"'affine/W' is a soft link")

    with h5py.File(tmp_path / "hardlink.h5", "w") as handle:
        parameter(handle, "affine/W", np.ones((4, 3), np.float32))
        parameter(handle, "affine/b", np.zeros(3, np.float32))
        handle["again"] = handle["affine"]  # one group under two names
    refused(tmp_path / "hardlink.h5", r"reached a second time")



@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_a_dataset_never_written_is_refused_as_such_not_as_truncated(tmp_path, libver):
    """h5py's create_dataset(shape=...) allocates no storage until it is written: the file
    is whole, and the error says what is missing rather than suspecting a cut."""
    with h5py.File(tmp_path / "unwritten.h5", "w", libver=libver) as handle:
        parameter(handle, "affine/W", shape=(4, 3), dtype=np.float32)
        parameter(handle, "affine/b", np.zeros(3, np.float32))
    refused(
        tmp_path / "unwritten.h5", r"'affine/W' stores no values: it was created, never written"
    )

# --- allocation bombs ----------------------------------------------------------------------------


def peak_bytes(function):
    """Peak bytes Python and numpy allocated while ``function`` ran, and its exception."""
    tracemalloc.start()
    try:
        function()
        error = None
    except Exception as caught:  # noqa: BLE001
        error = caught
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


def test_a_chunked_dataset_declaring_a_gigabyte_allocates_nothing(tmp_path):
    path = tmp_path / "bomb.h5"
    with h5py.File(path, "w") as handle:
        parameter(handle, "affine/W", shape=(16384, 16384), dtype=np.float32, chunks=(64, 64))
        parameter(handle, "affine/b", np.zeros(3, np.float32))
    assert path.stat().st_size < 10_000
    layer = small_layer()
    peak, error = peak_bytes(lambda: layer.load_parameters(path))
    assert isinstance(error, files.ParameterFileError), error
    assert "declares 1,073,741,824 bytes" in str(error)
    assert peak < 4 * MB, peak
    assert main(["inspect", str(path)]) == 2


def test_a_compressed_nnp_member_declaring_gigabytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "bomb.nnp"
    zeros = bz2.compress(b"\0" * (64 * MB))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("nnp_version.txt", "0.1\n")
        info = zipfile.ZipInfo("parameter.protobuf")
        info.compress_type = zipfile.ZIP_BZIP2
        archive.writestr(info, b"\0" * (64 * MB))
    assert path.stat().st_size < 10_000 and len(zeros) < 10_000
    layer = small_layer()
    peak, error = peak_bytes(lambda: layer.load_parameters(path))
    assert isinstance(error, files.ParameterFileError), error
    assert "declares 67,108,864 bytes" in str(error) and len(str(error)) < 1000
    assert peak < 4 * MB, peak


def _unvouched_h5(layer):
    """A file of ``layer``'s parameters in h5py's defaults (chunked): checked in a child process."""
    import io

    data = io.BytesIO()
    with h5py.File(data, "w") as handle:
        for key, param in layer.get_parameters().items():
            parameter(handle, key, np.ones(param.shape, np.float32), chunks=True)
    return data.getvalue()


def test_nnp_members_sharing_their_bytes_are_refused(tmp_path):
    """Central directory entries all pointing at one member: 200 of them (17 KB) took 80 s,
    a child process each; 20,000 in 1 MB would take hours."""
    import struct

    path = tmp_path / "overlapping.nnp"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("parameter.h5", _unvouched_h5(small_layer()))
    data = path.read_bytes()
    end = data.rindex(b"PK\x05\x06")
    start = struct.unpack("<I", data[end + 16 : end + 20])[0]
    directory = data[start:end] * 3  # three entries, one body
    path.write_bytes(
        data[:start] + directory
        + b"PK\x05\x06" + struct.pack("<4H2LH", 0, 0, 3, 3, len(directory), start, 0)
    )  # fmt: skip
    assert len(zipfile.ZipFile(path).infolist()) == 3
    refused(path, "its member 'parameter.h5' overlaps the next one")
    assert main(["inspect", str(path)]) == 2


def test_an_nnp_of_many_members_checked_in_a_child_process_is_refused(tmp_path, monkeypatch):
    """Each such member costs a fresh interpreter (0.4 s): 50 of them in 24 KB took 21 s."""
    from nnabla_modules.files import _h5_probe, _unzip

    path = tmp_path / "many.nnp"
    member = _unvouched_h5(small_layer())
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(6):
            archive.writestr(f"parameter{index}.h5", member)
    probed, probe = [], _h5_probe.probe

    def counted(stream, label):
        probed.append(label)
        return probe(stream, label)

    monkeypatch.setattr(_h5_probe, "probe", counted)
    message = refused(path, "more than 4 members of the archive need checking")
    assert "parameter4.h5" in message
    assert len(probed) == _unzip.MAX_PROBES == 4
    path.write_bytes(b"")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:  # up to the limit: read
        for index in range(4):
            archive.writestr(f"parameter{index}.h5", member)
    layer = small_layer()
    layer.load_parameters(path)
    assert all((param.d == 1).all() for param in layer.get_parameters().values())


def test_a_protobuf_shape_whose_product_overflows_is_refused(tmp_path, capsys):
    proto = nnabla_pb2.NNablaProtoBuf()
    stored = proto.parameter.add()
    stored.variable_name = "affine/W"
    stored.shape.dim.extend([4, 2**62 + 3])  # 4 * (2**62 + 3) = 12 modulo 2**64
    stored.data.extend([0.0] * 12)
    path = tmp_path / "overflow.protobuf"
    path.write_bytes(proto.SerializeToString())
    refused(path, r"overflow\.protobuf.*'affine/W'.*holds 12 values")
    assert main(["inspect", str(path)]) == 2
    assert "holds 12 values" in capsys.readouterr().err


@pytest.mark.parametrize("ext", [".h5", ".protobuf"])
def test_an_empty_shape_too_large_for_any_array_is_a_clean_error(tmp_path, capsys, ext):
    """(2**62, 0) holds no values, but numpy makes no such array: read_parameters and
    convert raised its bare ValueError, naming no file."""
    path = tmp_path / f"empty{ext}"
    if ext == ".h5":
        with h5py.File(path, "w") as handle:
            parameter(handle, "w", shape=(2**62, 0), dtype=np.float32)
    else:
        proto = nnabla_pb2.NNablaProtoBuf()
        proto.parameter.add(variable_name="w").shape.dim.extend([2**62, 0])
        path.write_bytes(proto.SerializeToString())
    with pytest.raises(files.ParameterFileError, match=r"empty.*'w' has shape .* larger than any"):
        files.read_parameters(path)
    assert main(["convert", str(path), str(tmp_path / "out.h5")]) == 2
    assert str(path) in capsys.readouterr().err
    proto = nnabla_pb2.NNablaProtoBuf()  # a shape numpy can make, empty, still loads
    proto.parameter.add(variable_name="w").shape.dim.extend([2**60, 0])
    (tmp_path / "fine.protobuf").write_bytes(proto.SerializeToString())
    assert files.read_parameters(tmp_path / "fine.protobuf")["w"][0].shape == (2**60, 0)


# --- structure: nesting, names, junk -------------------------------------------------------------


def _nested(path, depth):
    with h5py.File(path, "w") as handle:
        group = handle
        for _ in range(depth):
            group = group.create_group("g")
        parameter(group, "W", np.ones(3, np.float32))


def _open_seconds(path):
    start = time.perf_counter()
    with files.open_parameters(path) as stored:
        assert len(stored) == 1
    return time.perf_counter() - start


def test_deep_nesting_opens_in_linear_time(tmp_path):
    _nested(tmp_path / "shallow.h5", 400)
    _nested(tmp_path / "deep.h5", 3200)
    _open_seconds(tmp_path / "shallow.h5")  # warm
    shallow = min(_open_seconds(tmp_path / "shallow.h5") for _ in range(3))
    deep = min(_open_seconds(tmp_path / "deep.h5") for _ in range(3))
    # 8x the depth: linear is about 8x the time; a walk by full paths is 64x.
    assert deep < 20 * shallow + 0.05, (shallow, deep)
    assert deep < 2.0


DEEP_CHAIN_CHILD = """
import sys
import h5py, numpy as np
from nnabla_modules import files
from nnabla_modules.checkpoint import CheckpointError

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM"))

path, depth, leaves = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with h5py.File(path, "w", libver=("v108", "v108")) as handle:  # as write_parameters writes
    group = handle
    for _ in range(depth):
        group = group.create_group("g")
    for index in range(leaves):
        group.create_dataset(f"w{index}", data=np.ones(1, np.float32)).attrs["need_grad"] = True
    del group
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # the peak starts again from here
before = peak_kib()
try:
    with files.open_parameters(path) as stored:
        print("opened", len(stored))
except files.ParameterFileError as error:
    print("refused", error)
print("PEAK", peak_kib() - before)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux")
def test_a_deep_chain_of_groups_is_refused_within_memory_proportional_to_the_file(tmp_path):
    """HDF5 holds every open object's full name: 20,000 nested groups (2.6 MB) took 900 MB,
    with 10,000 datasets below them (5.6 MB) 2.8 GB, to open."""
    path = tmp_path / "chain.h5"
    done = subprocess.run(
        [sys.executable, "-c", DEEP_CHAIN_CHILD, str(path), "12000", "2000"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    size = path.stat().st_size
    assert "refused" in done.stdout and "groups nest too deep" in done.stdout, done.stdout
    peak = int(done.stdout.split("PEAK")[1]) * 1024
    assert peak < 64 * size, (peak, size)  # the names' budget: 32 characters per byte


def test_a_key_too_deep_to_read_back_is_refused_by_the_save(tmp_path, capsys):
    """Before anything is written: a 200 KB .protobuf key of 100,000 levels converted to
    .h5 took 1 GB and 5 s, then failed to read back as 'a full disk?'."""
    path = tmp_path / "deep.h5"
    files.write_parameters(path, {"w": np.ones(2, np.float32)})
    with pytest.raises(ValueError, match="nest the keys less deep") as caught:
        files.write_parameters(path, {"g/" * 8000 + "W": np.ones(3, np.float32)})
    assert str(path) in str(caught.value) and ".tmp" not in str(caught.value)
    assert list(files.read_parameters(path)) == ["w"]
    assert sorted(os.listdir(tmp_path)) == ["deep.h5"]
    files.write_parameters(tmp_path / "deep.protobuf", {"g/" * 100_000 + "W": np.ones(3)})
    assert main(["convert", str(tmp_path / "deep.protobuf"), str(path), "--quiet"]) == 2
    assert "nests too deep for an .h5 file" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["deep.h5", "deep.protobuf"]


def test_inspect_shows_a_key_nested_deeper_than_pythons_recursion_limit(tmp_path, capsys):
    key = "/".join(["s"] * 1500) + "/W"  # what write_parameters itself writes
    files.write_parameters(tmp_path / "deep.h5", {key: np.ones(3, np.float32)})
    assert main(["inspect", "--json", str(tmp_path / "deep.h5")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["scopes"]) == 1500 and set(report["scopes"].values()) == {3}
    assert main(["inspect", "--depth", "3", str(tmp_path / "deep.h5")]) == 0
    assert main(["inspect", str(tmp_path / "deep.h5")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].strip().startswith("W")


def test_inspect_refuses_output_quadratic_in_a_keys_depth(tmp_path, capsys):
    """A .protobuf holds a key whole: 10,000 levels in 20 KB make a table of 10,000 rows
    20,000 characters wide and 10,000 scope paths; 100,000 levels (200 KB) ran out of memory."""
    path = tmp_path / "deep.protobuf"
    files.write_parameters(path, {"s/" * 10_000 + "W": np.ones(3, np.float32)})
    for json_output in ([], ["--json"]):
        assert main(["inspect", *json_output, str(path)]) == 2
        captured = capsys.readouterr()
        assert "its keys nest too deep to print" in captured.err and "--depth" in captured.err
        assert len(captured.out) < 1000
        assert main(["inspect", *json_output, "--depth", "3", str(path)]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["scopes"] == {"s": 3, "s/s": 3, "s/s/s": 3}


def test_the_nn_module_layout_marks_a_deep_key_in_linear_time():
    """A 200 KB .protobuf key of 100,000 levels took 54 s to convert --to-layout nn-module."""
    from nnabla_modules.convert import with_module_marks

    def seconds(depth):
        key = "s/" * depth + "W"
        start = time.perf_counter()
        marked = with_module_marks(key)
        assert marked == "@s/" * (depth - 1) + "s/W"
        return time.perf_counter() - start

    seconds(2_000)  # warm
    shallow = min(seconds(2_000) for _ in range(3))
    deep = min(seconds(16_000) for _ in range(3))
    # 8x the depth: linear is about 8x the time; a path joined per level is 64x.
    assert deep < 20 * shallow + 0.01, (shallow, deep)


def test_a_key_nested_thousands_deep_is_matched_in_linear_time(tmp_path):
    """Matching a file's key to the module tree looked for a module at each of its levels:
    a 200 KB .protobuf key of 100,000 levels took 30 s to load (and fail)."""
    layer = small_layer()

    def seconds(depth):
        path = tmp_path / f"deep{depth}.protobuf"
        files.write_parameters(path, {"s/" * depth + "W": np.ones(1, np.float32)})
        start = time.perf_counter()
        with pytest.raises(CheckpointError, match="unexpected"):
            layer.load_parameters(path)
        return time.perf_counter() - start

    seconds(2_000)  # warm
    shallow = min(seconds(2_000) for _ in range(3))
    deep = min(seconds(16_000) for _ in range(3))
    # 8x the depth: linear is about 8x the time; a lookup per level is 64x.
    assert deep < 20 * shallow + 0.05, (shallow, deep)


def test_a_name_that_is_not_utf8_is_a_clean_error(tmp_path, capsys):
    path = tmp_path / "latin1.h5"
    with h5py.File(path, "w") as handle:
        group = handle.create_group("affine")
        group.create_dataset(b"W\xe9", data=np.ones((4, 3), np.float32))
        group[b"W\xe9"].attrs["need_grad"] = True
    refused(path, r"latin1\.h5.*b'W\\xe9'.*not UTF-8")
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not UTF-8" in err and "Traceback" not in err


def test_a_name_holding_a_slash_is_refused(tmp_path):
    """A link named ``a/b`` beside a group ``a`` holding ``b``: its full name leads to
    the other dataset, which reads open by name (docs/checkpoints.md)."""
    path = tmp_path / "slash.h5"
    with h5py.File(path, "w") as handle:
        parameter(handle, "affine/W", np.zeros((4, 3), np.float32))
        parameter(handle, "affinexW", np.ones(7, np.float32))
    data = path.read_bytes()
    assert data.count(b"affinexW") == 1
    path.write_bytes(data.replace(b"affinexW", b"affine/W"))
    refused(path, r"slash\.h5.*b'affine/W' in '/' is not a path")


def test_junk_of_any_size_gives_a_short_error(tmp_path):
    path = tmp_path / "junk.nntxt"
    path.write_bytes(b"parameter { variable_name: " + b"x" * (8 * MB) + b"\n")
    message = refused(path, r"junk\.nntxt")
    assert len(message) < 1000


# --- names with control characters in the command line ---------------------------------------

HOSTILE = "fc/\x1b[2J\rW\u202e"


def test_the_command_line_escapes_control_characters(tmp_path, capsys):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    files.write_parameters(a, {HOSTILE: np.ones(2, np.float32), "ok": np.ones(1, np.float32)})
    files.write_parameters(b, {HOSTILE: np.zeros(2, np.float32)})
    for argv in (
        ["inspect", str(a)],
        ["diff", str(a), str(b)],
        ["convert", str(a), str(tmp_path / "c.h5"), "--add-prefix", "x"],
    ):
        main(argv)
        captured = capsys.readouterr()
        text = captured.out + captured.err
        assert not any(c in text for c in "\x1b\r\u202e"), (argv, text)
        assert "\\x1b[2J\\rW\\u202e" in text, (argv, text)
    main(["inspect", str(a), "--json"])
    text = capsys.readouterr().out
    assert not any(c in text for c in "\x1b\r\u202e")
    assert json.loads(text)["parameters"][0]["key"] == HOSTILE


def test_a_damaged_compressed_chunk_is_a_parameter_file_error_naming_the_file(tmp_path, capsys):
    path = tmp_path / "damaged.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as handle:
        weight = parameter(
            handle, "affine/W", rng.random((4, 3), np.float32), chunks=(2, 3), compression="gzip"
        )
        parameter(handle, "affine/b", np.zeros(3, np.float32))
        chunk = weight.id.get_chunk_info(1)
    data = bytearray(path.read_bytes())
    data[chunk.byte_offset : chunk.byte_offset + chunk.size] = b"\xff" * chunk.size
    path.write_bytes(bytes(data))
    refused(path, r"damaged\.h5.*'affine/W' cannot be read")
    with pytest.raises(files.ParameterFileError, match=r"damaged\.h5.*affine/W"):
        files.read_parameters(path)
    assert main(["diff", str(path), str(path)]) == 2
    assert "damaged.h5" in capsys.readouterr().err


# --- the command line as a program --------------------------------------------------------------


def command_line(*argv, **kwargs):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run(
        [sys.executable, "-m", "nnabla_modules", *map(str, argv)],
        capture_output=True,
        env=env,
        check=False,
        **kwargs,
    )


def test_help_and_version_are_quiet(tmp_path):
    for argv in (["--help"], ["--version"], ["diff", "--help"]):
        done = command_line(*argv)
        assert done.returncode == 0
        assert b"nnabla" in done.stdout and done.stderr == b"", done.stderr
    files.write_parameters(tmp_path / "a.h5", {"w": np.ones(2, np.float32)})
    done = command_line("inspect", tmp_path / "a.h5")
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    assert b"[nnabla]" not in done.stdout


@pytest.mark.slow
def test_a_closed_pipe_ends_quietly(tmp_path):
    many = {f"k{i}": np.ones(2, np.float32) for i in range(5000)}
    files.write_parameters(tmp_path / "a.h5", many)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        f"{sys.executable} -m nnabla_modules inspect {tmp_path / 'a.h5'} | head -1",
        shell=True,
        capture_output=True,
        env=dict(os.environ, PYTHONPATH=root),
        check=False,
    )
    assert done.stdout.startswith(str(tmp_path / "a.h5").encode())
    assert done.stderr == b"", done.stderr


@pytest.mark.parametrize("option", ["--atol", "--rtol"])
def test_negative_tolerances_are_argument_errors(tmp_path, option, capsys):
    files.write_parameters(tmp_path / "a.h5", {"w": np.ones(2, np.float32)})
    for value in ("-1", "nan", "inf", "x"):
        with pytest.raises(SystemExit) as caught:
            main(["diff", str(tmp_path / "a.h5"), str(tmp_path / "a.h5"), option, value])
        assert caught.value.code == 2
        assert option in capsys.readouterr().err
    assert main(["diff", str(tmp_path / "a.h5"), str(tmp_path / "a.h5"), option, "0.5"]) == 0


def test_a_missing_output_folder_is_named_not_a_temporary(tmp_path, capsys):
    files.write_parameters(tmp_path / "a.h5", {"w": np.ones(2, np.float32)})
    out = tmp_path / "no" / "b.h5"
    assert main(["convert", str(tmp_path / "a.h5"), str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and ".tmp" not in err, err


STREAMING_CHILD = """
import resource, sys
from nnabla_modules.cli import main

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM"))

def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS"))

main(["inspect", sys.argv[2], "--json"])  # imports, warm caches
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # the peak starts again from here
before = rss_kib()
status = main(sys.argv[1:] + ["--no-progress", "--quiet"] * (sys.argv[1] == "convert"))
print("PEAK", status, peak_kib() - before, file=sys.stderr)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's clear_refs")
@pytest.mark.parametrize(
    "command, b", [("diff", "b.h5"), ("diff", "b.protobuf"), ("convert", "c.h5")]
)
@pytest.mark.slow
def test_diff_and_convert_stream_one_tensor_at_a_time(tmp_path, command, b):
    largest = 16 * MB
    rng = np.random.RandomState(0)
    values = {f"t{i}": rng.rand(largest // 4).astype(np.float32) for i in range(6)}
    files.write_parameters(tmp_path / "a.h5", values)
    values["t3"][0] += 1
    if command == "diff":
        files.write_parameters(tmp_path / b, values)  # a .protobuf is read as the .h5 is
    assert (tmp_path / "a.h5").stat().st_size > 5 * largest
    argv = [command, tmp_path / "a.h5", tmp_path / b]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-c", STREAMING_CHILD, *map(str, argv)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=root),
        check=False,
    )
    line = [line for line in done.stderr.splitlines() if line.startswith("PEAK")]
    assert line, done.stderr
    _, status, peak_kib = line[0].split()
    assert int(status) == (1 if command == "diff" else 0)
    # Two tensors (A's and B's) plus slices and HDF5's buffers; comparing the
    # whole tensors in float64 would take 6 or more.
    assert int(peak_kib) * 1024 < 2 * largest + 12 * MB, int(peak_kib) / 1024
    print(f"{command}: peak {int(peak_kib) / 1024:.1f} MiB over the resident set")


def test_large_files_get_a_progress_bar_on_stderr_only(tmp_path, monkeypatch, capsys):
    from nnabla_modules import cli

    four = {f"k{i}": np.ones(1000, np.float32) for i in range(4)}
    files.write_parameters(tmp_path / "a.h5", four)
    argv = ["diff", str(tmp_path / "a.h5"), str(tmp_path / "a.h5")]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""  # below the size: no bar
    monkeypatch.setattr(cli, "PROGRESS_BYTES", 1)
    assert main(argv + ["--json"]) == 0
    captured = capsys.readouterr()
    assert "diff: 100%" in captured.err and "32.0k" in captured.err
    assert json.loads(captured.out)["equal"] is True  # stdout stays machine-readable
    assert main(argv + ["--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["convert", argv[1], str(tmp_path / "b.h5")]) == 0
    assert "convert: 100%" in capsys.readouterr().err
    assert main(["convert", argv[1], str(tmp_path / "c.h5"), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")  # --quiet: nothing at all, no bar either
