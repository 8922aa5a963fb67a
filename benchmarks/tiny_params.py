"""Peak memory and time of reading files of many one-value parameters.

An ``.h5`` of 20,000 datasets by default, ten to a group, in NNabla's layout (a
``need_grad`` and an ``index`` attribute each), and a ``.protobuf`` of ten times
as many parameters. A fresh subprocess reads a one-parameter file first
(imports, caches), resets its peak resident set, reads the large file with
``files.read_parameters`` and reports how far the peak rose
(docs/checkpoints.md, "a file of many tiny parameters"). Targets: for the
``.h5``, 8 times the file's size (HDF5 holds some 17 KB per open dataset: the
reader keeps few open); for the ``.protobuf``, whose parameters take some 33
bytes each, 1 KiB per parameter: the numpy array, the key and the entry that
``read_parameters`` returns for each take about a third of it.

    python -m benchmarks.tiny_params [--count 20000]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

from nnabla_modules import files

from .checkpoint import _peak_bytes, _reset_peak, _resident_bytes
from .common import figure

MB = 1 << 20
TARGET_RATIO = 8
#: Bytes per parameter of a .protobuf of one-value parameters, and how many more it has.
TARGET_PER_PARAMETER = 1024
PROTOBUF_TIMES = 10


def write_tiny(path, count):
    with h5py.File(path, "w") as handle:
        for i in range(count):
            name = f"layer{i // 10}/p{i % 10}"
            dataset = handle.create_dataset(name, data=np.ones(1, np.float32))
            dataset.attrs["need_grad"] = True
            dataset.attrs["index"] = i


def write_tiny_protobuf(path, count):
    names = (f"layer{i // 10}/p{i % 10}" for i in range(count))
    files.write_parameters(path, ((name, (np.ones(1, np.float32), True)) for name in names))


def peak_of_read_here(warm, path):
    """In this (fresh) process: seconds and bytes the peak RSS rose by reading ``path``."""
    files.read_parameters(warm)
    baseline = _resident_bytes() if _reset_peak() else _peak_bytes()
    start = time.perf_counter()
    read = files.read_parameters(path)
    return time.perf_counter() - start, _peak_bytes() - baseline, len(read)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tiny_params", description=__doc__)
    parser.add_argument("--count", type=int, default=20_000, help="datasets in the file")
    parser.add_argument("--rounds", type=int, default=1, help="ignored: one fresh process")
    parser.add_argument("--peak-of", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peak_of:
        seconds, extra, count = peak_of_read_here(*args.peak_of)
        print(json.dumps({"seconds": seconds, "extra_bytes": extra, "count": count}))
        return 0
    h5 = _measure(".h5", write_tiny, args.count)
    print(f"file: {args.count:,} one-value datasets, {h5['size'] / MB:.1f} MiB")
    print(f"  read_parameters: {h5['seconds']:.2f} s")
    extra, size = h5["extra_bytes"], h5["size"]
    met = figure(
        "read_parameters of many tiny .h5 datasets: peak RSS above the resident set",
        f"{extra / MB:.1f} MiB ({extra / size:.1f}x the file)",
        f"<= {TARGET_RATIO}x the file ({TARGET_RATIO * size / MB:.0f} MiB)",
        extra <= TARGET_RATIO * size and h5["count"] == args.count,
    )
    count = PROTOBUF_TIMES * args.count
    pb = _measure(".protobuf", write_tiny_protobuf, count)
    print(f"file: {count:,} one-value .protobuf parameters, {pb['size'] / MB:.1f} MiB")
    print(f"  read_parameters: {pb['seconds']:.2f} s")
    extra, size = pb["extra_bytes"], pb["size"]
    met &= figure(
        "read_parameters of many tiny .protobuf parameters: peak RSS above the resident set",
        f"{extra / MB:.1f} MiB ({extra / count:.0f} bytes per parameter, {extra / size:.1f}x "
        "the file)",
        f"<= {TARGET_PER_PARAMETER} bytes per parameter",
        extra <= TARGET_PER_PARAMETER * count and pb["count"] == count,
    )
    return 0 if met else 1


def _measure(ext, write, count):
    """The figures of reading a file of ``count`` parameters, in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="nm-bench-") as folder:
        warm, path = os.path.join(folder, "one" + ext), os.path.join(folder, "tiny" + ext)
        write(warm, 1)
        write(path, count)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.tiny_params", "--peak-of", warm, path],
            cwd=root, check=True, capture_output=True, text=True,
        )  # fmt: skip
        size = os.path.getsize(path)
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "size": size}


if __name__ == "__main__":
    sys.exit(main())
