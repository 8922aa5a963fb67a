"""Peak memory of ``nnabla-modules diff`` on large files: an ``.h5`` against a ``.protobuf``.

Both files hold the same tensors (192 MB by default, 12 of 16 MB); a fresh
subprocess imports the command line, resets its peak resident set
(``/proc/self/clear_refs``), runs ``diff A.h5 B.protobuf`` and reports how far
the peak rose above the resident set before it. The command reads one tensor
of each file at a time (docs/tools.md, "Large files"), so the target is two of
the largest tensors plus 16 MB for slices and buffers, whatever the files' size.

    python -m benchmarks.cli [--megabytes 192]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from nnabla_modules import files

from .checkpoint import _peak_bytes, _reset_peak, _resident_bytes
from .common import figure

MB = 1 << 20
TENSOR = 16 * MB


def peak_of_diff_here(a, b):
    """In this (fresh) process: bytes the peak RSS rose by during ``diff a b``."""
    from nnabla_modules.cli import main

    main(["inspect", a, "--json"])  # imports NNabla, warms caches; prints one line
    if not _reset_peak():
        raise SystemExit("this benchmark needs Linux's /proc/self/clear_refs")
    baseline = _resident_bytes()
    status = main(["diff", a, b, "--no-progress"])
    return _peak_bytes() - baseline, status


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli", description=__doc__)
    parser.add_argument("--megabytes", type=int, default=192, help="size of each file")
    parser.add_argument("--rounds", type=int, default=1, help="ignored: one fresh process")
    parser.add_argument("--peak-of", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peak_of:
        extra, status = peak_of_diff_here(*args.peak_of)
        print(json.dumps({"extra_bytes": extra, "status": status}))
        return 0
    count = max(1, args.megabytes * MB // TENSOR)
    rng = np.random.RandomState(0)
    values = {f"layer{i}/W": rng.rand(TENSOR // 4).astype(np.float32) for i in range(count)}
    with tempfile.TemporaryDirectory(prefix="nm-bench-") as folder:
        a, b = os.path.join(folder, "a.h5"), os.path.join(folder, "b.protobuf")
        files.write_parameters(a, values)
        files.write_parameters(b, values)
        del values
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.cli", "--peak-of", a, b],
            cwd=root, check=True, capture_output=True, text=True,
        )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    target = 2 * TENSOR + 16 * MB
    print(f"files: {count * TENSOR / MB:.0f} MB each, {count} tensors of {TENSOR / MB:.0f} MB")
    met = figure(
        "diff .h5 .protobuf: peak RSS above the resident set",
        f"{result['extra_bytes'] / MB:.1f} MiB (files equal: {result['status'] == 0})",
        f"<= two tensors + 16 MB ({target / MB:.0f} MiB)",
        result["extra_bytes"] <= target and result["status"] == 0,
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
