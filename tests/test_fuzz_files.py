"""Fuzzed checkpoint files: truncated, bit-flipped, empty, wrong dtype, wrong shape, foreign.

Every damaged file either loads whole (a flipped bit inside a value is still a
valid file) or fails with a clean error that names the file, and then nothing
in the registry has changed. ``FUZZED`` counts the files tried.
"""

import functools
import random

import h5py
import nnabla as nn
import numpy as np
import pytest
from crafted_h5 import load_outcome, outcome_in_a_child
from models import ResUnit

pytestmark = pytest.mark.slow  # fuzzing: make test-fast skips it

FORMATS = (".h5", ".protobuf")
TRUNCATIONS = 40
BIT_FLIPS = 120


def _model_and_file(tmp_path, ext, writer="ours"):
    model = ResUnit(8, 8, name="net")
    model.get_parameters()
    path = tmp_path / f"good{ext}"
    if writer == "ours":
        model.save_parameters(str(path))
    else:  # NNabla's own writer: HDF5's earliest format, no metadata checksums
        nn.save_parameters(str(path))
    for param in model.get_parameters(grad_only=False).values():
        param.d = np.random.RandomState(1).randn(*param.shape)  # differs from the file
    return model, path.read_bytes()


def _snapshot(model):
    return {k: v.d.copy() for k, v in model.get_parameters(grad_only=False).items()}


def _damaged(good, seed):
    rng = random.Random(seed)
    for index in range(TRUNCATIONS):
        yield f"truncated at {index}", good[: len(good) * index // TRUNCATIONS]
    for _ in range(BIT_FLIPS):
        data = bytearray(good)
        position = rng.randrange(len(data) * 8)
        data[position // 8] ^= 1 << (position % 8)
        yield f"bit {position} flipped", bytes(data)
    yield "empty", b""
    yield "random bytes", bytes(rng.randrange(256) for _ in range(len(good)))


def _load_or_fail_cleanly(model, path, what):
    before = _snapshot(model)
    try:
        model.load_parameters(str(path))
    except (ValueError, RuntimeError, OSError) as error:
        assert str(path) in str(error), f"{what}: the error does not name the file: {error}"
        after = _snapshot(model)
        for key in before:
            assert np.array_equal(before[key], after[key]), f"{what}: {key} changed"
        return "error"
    return "loaded"


@pytest.mark.parametrize("writer", ["ours", "nn.save_parameters"])
@pytest.mark.parametrize("ext", FORMATS)
def test_damaged_files_load_whole_or_fail_cleanly(tmp_path, ext, writer):
    model, good = _model_and_file(tmp_path, ext, writer)
    outcomes = {"error": 0, "loaded": 0}
    for index, (what, data) in enumerate(_damaged(good, seed=ext)):
        path = tmp_path / f"fuzz{index}{ext}"
        path.write_bytes(data)
        outcomes[_load_or_fail_cleanly(model, path, what)] += 1
    assert sum(outcomes.values()) == TRUNCATIONS + BIT_FLIPS + 2
    assert outcomes["error"] >= TRUNCATIONS  # every truncation is caught


def _h5(path, entries):
    with h5py.File(path, "w") as handle:
        for index, (key, value, attrs) in enumerate(entries):
            dataset = handle.create_dataset(key, data=value)
            for name, attr in attrs.items():
                dataset.attrs[name] = attr
            dataset.attrs.setdefault("index", index)


def _foreign_files(tmp_path, model):
    params = model.get_parameters(grad_only=False)
    good = [(k, p.d, {"need_grad": p.need_grad}) for k, p in params.items()]
    yield "wrong dtype", ".h5", [(k, v.astype(np.complex64), a) for k, v, a in good]
    yield "text values", ".h5", [(k, np.array([b"x"] * v.size), a) for k, v, a in good]
    yield "wrong shape", ".h5", [(k, np.zeros(v.shape + (2,)), a) for k, v, a in good]
    yield "no attributes", ".h5", [(k, v, {}) for k, v, _ in good]
    yield "unrelated h5", ".h5", [("images/train", np.zeros((4, 4)), {"units": "px"})]
    yield "empty h5", ".h5", []


def test_wrong_and_foreign_h5_files_fail_cleanly(tmp_path):
    model, _ = _model_and_file(tmp_path, ".h5")
    for index, (what, ext, entries) in enumerate(_foreign_files(tmp_path, model)):
        path = tmp_path / f"foreign{index}{ext}"
        _h5(path, entries)
        assert _load_or_fail_cleanly(model, path, what) == "error", what


def test_foreign_protobuf_files_fail_cleanly(tmp_path):
    from nnabla.utils import nnabla_pb2

    model, _ = _model_and_file(tmp_path, ".protobuf")
    other = nnabla_pb2.NNablaProtoBuf()
    other.global_config.default_context.array_class = "CpuArray"  # valid, holds no parameters
    wrong_shape = nnabla_pb2.NNablaProtoBuf()
    for key, param in model.get_parameters(grad_only=False).items():
        stored = wrong_shape.parameter.add()
        stored.variable_name = key
        stored.shape.dim.extend([2, *param.shape])
        stored.data.extend([0.0] * (2 * param.size))
    cases = {"another message": other.SerializeToString(),
             "wrong shape": wrong_shape.SerializeToString(),
             "text": b"this is not a protobuf file\n" * 10}
    for what, data in cases.items():
        path = tmp_path / f"{what.replace(' ', '_')}.protobuf"
        path.write_bytes(data)
        assert _load_or_fail_cleanly(model, path, what) == "error", what


FUZZED = 2 * 2 * (TRUNCATIONS + BIT_FLIPS + 2) + 6 + 3  # 657 files per run


def _mutants(good, rng, count):
    """One-byte changes: at random places, and over the first name heap's free-list
    offset and first free block, where a changed offset makes HDF5 follow a loop."""
    from crafted_h5 import local_heaps

    for _ in range(count):
        data = bytearray(good)
        data[rng.randrange(len(data))] = rng.choice((0, 1, 8, 16, 24, 255, rng.randrange(256)))
        yield bytes(data)
    if not local_heaps(good):
        return  # HDF5 1.8's format: no local heaps
    heap = local_heaps(good)[0]
    segment = int.from_bytes(good[heap + 24 : heap + 32], "little")
    free = int.from_bytes(good[heap + 16 : heap + 24], "little")
    for position in [*range(heap + 16, heap + 24), *range(segment + free, segment + free + 16)]:
        for value in (0, 1, 255, free - 8, free, free + 8):
            data = bytearray(good)
            data[position] = value
            yield bytes(data)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
@pytest.mark.parametrize("writer", ["nn.save_parameters", "ours"])
def test_what_the_python_check_admits_hdf5_reads_in_bounded_time_and_memory(tmp_path, writer):
    """The check that spares NNabla's files and ours the child process, fuzzed: every file
    it admits loads (or fails cleanly) in a forked process with 2 s and 256 MiB more
    address space, without a crash (what it does not admit goes to the child process)."""
    import io as stdio

    from nnabla_modules.files import _h5_check

    _, good = _model_and_file(tmp_path, ".h5", writer=writer)
    assert _h5_check.vouch(stdio.BytesIO(good))
    admitted, failures = 0, []
    for data in _mutants(good, random.Random(16), 100):
        try:
            if _h5_check.vouch(stdio.BytesIO(data)) is None:
                continue
        except _h5_check.Damaged:
            continue  # refused before HDF5 reads it
        admitted += 1
        outcome = load_outcome(data)
        if outcome != "ok":
            failures.append(outcome)
    assert not failures, failures
    assert admitted > 50


def _good_archive(tmp_path, model):
    """An .nnp holding NNabla's .h5 of ``model``'s parameters and this library's .protobuf."""
    import zipfile

    nn.save_parameters(str(tmp_path / "nn.h5"))
    model.save_parameters(str(tmp_path / "ours.protobuf"))
    with zipfile.ZipFile(tmp_path / "good.nnp", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("nnp_version.txt", "0.1\n")
        archive.write(tmp_path / "nn.h5", "parameter.h5")
        archive.write(tmp_path / "ours.protobuf", "parameter.protobuf")
    return (tmp_path / "good.nnp").read_bytes()


def _every_use_of(model, path, good_path):
    """Loads ``path`` and runs inspect, diff and convert on it: clean errors only."""
    import contextlib
    import io as stdio

    from nnabla_modules.cli import main

    _load_or_fail_cleanly(model, path, "mutant")
    out = str(path) + ".out.h5"
    for argv in (["inspect", path], ["inspect", "--json", path], ["diff", path, good_path],
                 ["convert", path, out, "--quiet"]):  # fmt: skip
        errors = stdio.StringIO()
        with contextlib.redirect_stdout(stdio.StringIO()), contextlib.redirect_stderr(errors):
            status = main([str(arg) for arg in argv])
        assert status in (0, 1, 2) and "Traceback" not in errors.getvalue(), errors.getvalue()


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
@pytest.mark.parametrize("ext", [".protobuf", ".nnp"])
def test_damaged_files_load_and_show_in_bounded_time_and_memory(tmp_path, ext):
    """Mutants of module-written and NNabla-written files, each loaded, inspected, diffed
    and converted in a forked child with 10 s and 512 MiB more address space: a load or a
    clean error naming the file, nothing half-loaded, no traceback."""
    model, good = _model_and_file(tmp_path, ".protobuf", writer="ours")
    if ext == ".nnp":
        good = _good_archive(tmp_path, model)
    good_path = tmp_path / f"good{ext}"
    good_path.write_bytes(good)
    failures = []
    for index, data in enumerate(_mutants(good, random.Random(ext), 60)):
        path = tmp_path / f"mutant{index}{ext}"
        path.write_bytes(data)
        outcome = outcome_in_a_child(functools.partial(_every_use_of, model, path, good_path))
        if outcome != "returned":
            failures.append((index, outcome[:500]))
        path.unlink()
    assert not failures, failures
