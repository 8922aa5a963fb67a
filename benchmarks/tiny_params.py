"""Peak memory and time of reading an ``.h5`` of many one-value parameters.

20,000 datasets by default, ten to a group, in NNabla's layout (a ``need_grad``
and an ``index`` attribute each). A fresh subprocess reads a one-dataset file
first (imports, caches), resets its peak resident set, reads the large file with
``files.read_parameters`` and reports how far the peak rose. HDF5 holds some
17 KB per open dataset: the reader keeps few open (docs/checkpoints.md, "a file
of many tiny parameters"), so the target is 8 times the file's size.

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


def write_tiny(path, count):
    with h5py.File(path, "w") as handle:
        for i in range(count):
            name = f"layer{i // 10}/p{i % 10}"
            dataset = handle.create_dataset(name, data=np.ones(1, np.float32))
            dataset.attrs["need_grad"] = True
            dataset.attrs["index"] = i


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
    with tempfile.TemporaryDirectory(prefix="nm-bench-") as folder:
        warm, path = os.path.join(folder, "one.h5"), os.path.join(folder, "tiny.h5")
        write_tiny(warm, 1)
        write_tiny(path, args.count)
        size = os.path.getsize(path)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.tiny_params", "--peak-of", warm, path],
            cwd=root, check=True, capture_output=True, text=True,
        )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    extra = result["extra_bytes"]
    print(f"file: {args.count:,} one-value datasets, {size / MB:.1f} MiB")
    print(f"  read_parameters: {result['seconds']:.2f} s")
    met = figure(
        "read_parameters of many tiny .h5 datasets: peak RSS above the resident set",
        f"{extra / MB:.1f} MiB ({extra / size:.1f}x the file)",
        f"<= {TARGET_RATIO}x the file ({TARGET_RATIO * size / MB:.0f} MiB)",
        extra <= TARGET_RATIO * size and result["count"] == args.count,
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
