"""Files from anywhere cost time and memory in proportion to what is read.

Crafted ``.h5``, ``.nnp`` and ``.protobuf`` files whose structure loops, shares
nodes, overstates sizes or holds many dimensions: each is refused by a check
that reads every structure once, or by the child process that reads what
Python cannot vouch for, within its time and address-space limits, killed
with the process that started it. See docs/checkpoints.md, "Guarantees and
limits".
"""

import contextlib
import io
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile

import h5py
import numpy as np
import pytest
from crafted_h5 import (
    forged_object_header,
    load_outcome,
    looping_free_list,
    nnabla_file,
    outcome_in_a_child,
    shared_tree_nodes,
    version_2_superblock,
)
from nnabla.utils import nnabla_pb2
from test_hostile_files import peak_bytes

from benchmarks.tiny_params import write_tiny
from nnabla_modules import files
from nnabla_modules.files import _h5, _h5_check, _h5_probe

MB = 1 << 20


@contextlib.contextmanager
def deadline(seconds):
    """Raises TimeoutError inside the block once it has run ``seconds`` (Python code only)."""

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def no_child(monkeypatch):
    """Fails the test if a load starts the checking child."""

    def probe(stream, label):
        raise AssertionError(f"{label}: the Python check should have refused it")

    monkeypatch.setattr(_h5_probe, "probe", probe)


# --- the Python check: every structure once --------------------------------------------------


def test_a_heap_free_list_that_loops_is_refused_before_hdf5_reads_it(tmp_path, no_child):
    path = tmp_path / "loop.h5"
    path.write_bytes(looping_free_list(nnabla_file(tmp_path / "good.h5")))
    with open(path, "rb") as stream, pytest.raises(_h5_check.Damaged, match="free list"):
        _h5_check.vouch(stream)
    with pytest.raises(files.ParameterFileError, match=r"loop\.h5.*loops: the name heap"):
        files.open_parameters(path).__enter__()


def test_shared_group_tree_nodes_are_refused_in_linear_time(tmp_path, no_child):
    path = tmp_path / "shared.h5"
    path.write_bytes(shared_tree_nodes(nnabla_file(tmp_path / "good.h5"), levels=40))
    assert path.stat().st_size < 32_000  # 2**40 leaves for a walk that forgets nodes
    start = time.monotonic()
    refused = pytest.raises(files.ParameterFileError, match=r"shared\.h5.*loops: .* reached twice")
    with deadline(10), refused:
        files.open_parameters(path).__enter__()
    assert time.monotonic() - start < 1.0


# --- the child process: time, memory, process group, parent ---------------------------------


def test_the_checking_child_is_stopped_after_its_time(tmp_path, monkeypatch):
    data = shared_tree_nodes(nnabla_file(tmp_path / "good.h5"), levels=40)  # HDF5 walks it for ever
    monkeypatch.setattr(_h5_probe, "PROBE_SECONDS", 1.0)
    start = time.monotonic()
    with deadline(60), pytest.raises(files.ParameterFileError, match=r"more than 1 s"):
        _h5_probe.probe(io.BytesIO(data), "'shared.h5'")
    assert time.monotonic() - start < 15
    with pytest.raises(ChildProcessError):  # killed and reaped
        os.waitpid(-1, os.WNOHANG)


def test_the_checking_child_has_an_address_space_limit(tmp_path, monkeypatch):
    data = looping_free_list(nnabla_file(tmp_path / "good.h5"))  # HDF5 allocates without end
    monkeypatch.setattr(_h5_probe, "PROBE_MEMORY", 256 * MB)
    monkeypatch.setattr(_h5_probe, "PROBE_SECONDS", 60.0)  # the memory limit, not the time, ends it
    start = time.monotonic()
    with deadline(120), pytest.raises(files.ParameterFileError, match=r"'loop\.h5'"):
        _h5_probe.probe(io.BytesIO(data), "'loop.h5'")
    assert time.monotonic() - start < 30


LOADER = """
import sys
from nnabla_modules.files import _h5_probe
_h5_probe.PROBE_SECONDS = 600.0
print("imported", flush=True)  # importing NNabla may start short-lived processes of its own
_h5_probe.probe(open(sys.argv[2], "rb"), "shared.h5")
"""


def _children(pid):
    """Processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry))
    return found


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_checking_child_dies_with_the_process_that_started_it(tmp_path):
    path = tmp_path / "shared.h5"
    path.write_bytes(shared_tree_nodes(nnabla_file(tmp_path / "good.h5"), levels=40))
    loader = subprocess.Popen(
        [sys.executable, "-c", LOADER, _h5.__file__, str(path)], stdout=subprocess.PIPE
    )
    child = None
    try:
        assert loader.stdout.readline() == b"imported\n"
        deadline_at = time.monotonic() + 60
        while child is None and time.monotonic() < deadline_at:
            child = next(iter(_children(loader.pid)), None)
            time.sleep(0.05)
        assert child is not None, "the loader started no child"
        assert os.getpgid(child) == child  # its own process group
        time.sleep(0.5)  # past its start: busy in HDF5
        loader.terminate()  # SIGTERM, as services are stopped
        loader.wait()
        ends = time.monotonic() + 5
        while _running(child) and time.monotonic() < ends:
            time.sleep(0.05)
        assert not _running(child), "the child outlived its parent"
    finally:
        loader.kill()
        loader.wait()
        loader.stdout.close()
        if child is not None and _running(child):
            os.kill(child, signal.SIGKILL)


# --- many tiny datasets: memory in proportion to the file -------------------------------------

#: Reads the file in argv[1] and prints its size and how far the peak RSS grew doing so,
#: after a read of the file in argv[3] has imported what reading needs.
#: (VmHWM, not ru_maxrss: that one keeps the peak of the process before its exec.)
PEAK_READ = """
import os, sys
from nnabla_modules import files
def status(key):
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(key))
files.read_parameters(sys.argv[3])
held = status("VmRSS")
values = files.read_parameters(sys.argv[1])
assert len(values) == int(sys.argv[2]), len(values)
print(os.path.getsize(sys.argv[1]), status("VmHWM") - held)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_reading_many_tiny_datasets_takes_memory_in_proportion_to_the_file(tmp_path):
    """HDF5 holds kilobytes per open dataset: the reader keeps none open but the one it
    checks or reads (docs/checkpoints.md), so 5,000 one-value datasets take a few times
    their file's size, not 40 times."""
    path, count, first = tmp_path / "tiny.h5", 5000, tmp_path / "one.h5"
    for target, datasets in ((path, count), (first, 1)):
        write_tiny(target, datasets)
    done = subprocess.run(
        [sys.executable, "-c", PEAK_READ, str(path), str(count), str(first)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    size, grown = map(int, done.stdout.split())
    assert grown < 8 * size, f"{grown:,} bytes for a file of {size:,}"


# --- .nnp: one budget from the archive's real size ----------------------------------------------


def _load(path):
    return files.read_parameters(path)


def test_an_nnp_member_overstating_its_compressed_size_is_refused_before_unpacking(tmp_path):
    path = tmp_path / "overstated.nnp"
    declared = 64 * MB
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("parameter.protobuf", bytes(declared))
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 20, declared // 1000)  # "compressed" into 64 KiB
    path.write_bytes(data)
    assert len(data) < 1000
    peak, error = peak_bytes(lambda: _load(path))
    assert isinstance(error, files.ParameterFileError), error
    # its compressed bytes would run past the archive's directory
    assert "overlaps the central directory" in str(error) and "overstated.nnp" in str(error)
    assert peak < 4 * MB, peak


def test_an_nnp_member_is_unpacked_in_bounded_pieces_whatever_it_declares(tmp_path):
    path = tmp_path / "understated.nnp"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("parameter.protobuf", bytes(64 * MB))  # 79 bytes of bzip2
    data = bytearray(path.read_bytes())
    local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 1000)  # "unpacks to 1,000 bytes"
    struct.pack_into("<I", data, central + 24, 1000)
    path.write_bytes(data)
    peak, error = peak_bytes(lambda: _load(path))
    assert peak < 8 * MB, peak  # zipfile unpacks the whole bzip2 stream at once: 64 MiB
    assert isinstance(error, files.ParameterFileError), error
    assert "understated.nnp" in str(error) and "1,000 bytes" in str(error), error


def _h5_bytes(values, **options):
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        for name, value in values.items():
            handle.create_dataset(name, data=value, **options).attrs["need_grad"] = True
    return buffer.getvalue()


def test_nnp_members_are_read_one_at_a_time(tmp_path):
    path = tmp_path / "many.nnp"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index in range(40):  # each replaces the one before, as NNabla reads them
            values = {"affine/W": np.full((512, 512), index, np.float32)}
            archive.writestr(f"parameter{index}.h5", _h5_bytes(values))
    assert path.stat().st_size < 200_000
    found = []
    peak, error = peak_bytes(lambda: found.append(_load(path)))
    assert error is None, error
    assert (found[0]["affine/W"][0] == 39).all()
    assert peak < 8 * MB, peak  # one member and its values, not 40


def test_chunked_datasets_in_an_nnp_member_draw_on_the_archive_budget(tmp_path):
    declared = {f"p{index}/W": (512, 512) for index in range(200)}  # 1 MiB each, nothing stored
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        for name, shape in declared.items():
            handle.create_dataset(name, shape=shape, dtype=np.float32, chunks=(64, 64))
            handle[name].attrs["need_grad"] = True
    path = tmp_path / "chunked.nnp"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("parameter.h5", buffer.getvalue())
    assert path.stat().st_size * _h5.MAX_RATIO < 100 * MB  # the archive may unpack less
    peak, error = peak_bytes(lambda: _load(path))
    assert isinstance(error, files.ParameterFileError), error
    assert "chunked.nnp" in str(error) and "in all" in str(error), error
    assert peak < 16 * MB, peak


# --- .protobuf: many dimensions ---------------------------------------------------------------


def test_a_protobuf_shape_with_many_dimensions_is_refused_in_linear_time(tmp_path):
    proto = nnabla_pb2.NNablaProtoBuf()
    stored = proto.parameter.add()
    stored.variable_name = "affine/W"
    stored.shape.dim.extend([2**62 + 1] * 20_000)
    stored.data.append(0.0)
    path = tmp_path / "dims.protobuf"
    path.write_bytes(proto.SerializeToString())
    archive = tmp_path / "dims.nnp"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.write(path, "parameter.protobuf")
    assert archive.stat().st_size < 2000
    for source in (path, archive):
        start = time.monotonic()
        with pytest.raises(files.ParameterFileError, match="20,000 dimensions"):
            _load(source)
        assert time.monotonic() - start < 2.0


# --- which files Python vouches for: from the format, not the superblock's version -----------


def test_a_version_2_superblock_over_unchecksummed_structures_is_not_trusted(tmp_path):
    good = nnabla_file(tmp_path / "good.h5")
    hostile = version_2_superblock(looping_free_list(good))
    with h5py.File(io.BytesIO(version_2_superblock(good)), "r") as handle:
        assert "fc1/affine/W" in handle  # HDF5 reads such files
    assert _h5_check.vouch(io.BytesIO(hostile)) is None  # nothing to vouch for: no checksums
    assert load_outcome(hostile) == "ok"  # handed to the checking child, not "memory"
    path = tmp_path / "v2.h5"
    path.write_bytes(hostile)
    with pytest.raises(files.ParameterFileError, match=r"v2\.h5"):
        files.open_parameters(path).__enter__()


def _probes(monkeypatch):
    probed, probe = [], _h5_probe.probe

    def counted(stream, label):
        probed.append(label)
        return probe(stream, label)

    monkeypatch.setattr(_h5_probe, "probe", counted)
    return probed


def test_a_checksummed_file_with_an_unchecksummed_chunk_index_goes_to_the_child(
    tmp_path, monkeypatch
):
    path = tmp_path / "chunked.h5"
    values = {"affine/W": np.ones((4, 3), np.float32), "affine/b": np.ones(3, np.float32)}
    with h5py.File(path, "w", libver=("v108", "v108")) as handle:  # a version 2 superblock
        for name, value in values.items():  # HDF5 1.8's chunk index: a B-tree without checksums
            handle.create_dataset(name, data=value, chunks=True).attrs["need_grad"] = True
    probed = _probes(monkeypatch)
    loaded = files.read_parameters(path)
    assert len(probed) == 1, probed
    np.testing.assert_array_equal(loaded["affine/W"][0], values["affine/W"])


def test_a_chunk_index_that_crashes_hdf5_when_values_are_read_is_refused(tmp_path):
    """HDF5 walks a chunked dataset's index, and runs its filters, only when its values are
    read: the child reads them too, so a chunk whose stored size is 1 byte (a Fletcher-32
    checksum needs 4) crashes the child, not the load."""
    path = tmp_path / "chunks.h5"
    with h5py.File(path, "w") as handle:  # an HDF5 1.6 chunk B-tree, no checksums
        dataset = handle.create_dataset(
            "affine/W", data=np.ones((8, 8), np.float32), chunks=(4, 8), fletcher32=True
        )
        dataset.attrs["need_grad"] = True
    data = bytearray(path.read_bytes())
    tree = data.index(b"TREE\x01")  # the chunk index: a B-tree node of raw data chunks
    struct.pack_into("<I", data, tree + 24, 1)  # its first key: the chunk's stored size
    path.write_bytes(data)
    said = outcome_in_a_child(lambda: files.read_parameters(path), seconds=30)
    assert said.startswith("ParameterFileError"), said  # "crash" when only the parent reads it
    assert "chunks.h5" in said and "crashed" in said, said


def test_files_written_here_are_vouched_for_without_a_child(tmp_path, no_child):
    values = {f"layer{i}/affine/W": np.full((3, 2), i, np.float32) for i in range(20)}
    files.write_parameters(tmp_path / "net.h5", values)  # 20 groups in one: dense storage
    loaded = files.read_parameters(tmp_path / "net.h5")
    assert list(loaded) == list(values)


def test_a_forged_checksummed_header_unlike_what_h5py_writes_goes_to_the_child(
    tmp_path, monkeypatch
):
    path = tmp_path / "forged.h5"
    files.write_parameters(path, {"affine/W": np.ones((4, 3), np.float32)})
    float32 = bytes.fromhex("11201f0004000000" "00002000" "17080017" "7f000000")
    assert float32 in path.read_bytes()
    odd = float32[:-4] + bytes.fromhex("7e000000")  # another exponent bias
    path.write_bytes(forged_object_header(path.read_bytes(), float32, odd))
    with h5py.File(path, "r") as handle:
        assert handle["affine/W"].shape == (4, 3)  # HDF5 reads it: the checksum is right
    probed = _probes(monkeypatch)
    with contextlib.suppress(files.ParameterFileError):  # whichever the child says
        files.read_parameters(path)
    assert probed == [repr(str(path))], probed
