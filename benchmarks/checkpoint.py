"""Checkpoint benchmark: a ~100 MB module, ours against ``nn.save/load_parameters``.

Run it with ``python -m benchmarks.checkpoint`` (``--help`` for options).

* Time: the same process saves and loads in interleaved rounds (which of the
  two goes first alternates), after one warm-up round each; medians are
  printed. Both load an ``.h5`` file of the same parameters, warm in the page
  cache, into a model whose parameters exist: ``nn.load_parameters`` a file of
  registry keys, ``module.load_parameters`` one of keys relative to the module.
* Memory: each measurement runs in a fresh subprocess, which builds the model,
  resets its peak resident set (``/proc/self/clear_refs``, then ``VmHWM``;
  elsewhere ``ru_maxrss`` with the peak so far as the baseline), loads, and
  reports how far the peak rose above the resident set before the load.

Targets: load time <= 1.10x ``nn.load_parameters``, for our files and for
NNabla's (checked in Python before HDF5 reads them); the extra peak at most the
model's old values (kept until the load is complete, so that any failure puts
them back) plus one largest tensor.
"""

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import nnabla as nn

import nnabla_modules as nm

from .common import figure, progress

MB = 1 << 20
TIME_TARGET = 1.10


class BenchNet(nm.Module):
    """About 100 MB: an embedding, a stack of affine layers, convolutions with batch norm."""

    def __init__(self):
        self.embed = nm.Embed(8192, 1024)  # 32 MB, the largest tensor
        self.fcs = [nm.Affine(1024, 1024) for _ in range(16)]  # 64 MB
        self.convs = [nm.Conv2d(64, 64, (3, 3), pad=(1, 1)) for _ in range(8)]
        self.bns = [nm.BatchNorm2d(64) for _ in range(8)]


def build_model():
    """The benchmark model with its parameters created, under the root ``bench``."""
    nn.clear_parameters()
    model = BenchNet(name="bench")
    params = model.get_parameters(grad_only=False)
    return model, params


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_times(model, ours_file, nnabla_file, rounds):
    """Median seconds of save and load for both, interleaved rounds."""
    folder = os.path.dirname(ours_file)
    cases = {
        "save ours": lambda: model.save_parameters(os.path.join(folder, "save_ours.h5")),
        "save nnabla": lambda: nn.save_parameters(os.path.join(folder, "save_nnabla.h5")),
        "load ours": lambda: model.load_parameters(ours_file),
        "load nnabla": lambda: nn.load_parameters(nnabla_file),
        # An nn.save_parameters file has no metadata checksums: checked in Python first.
        "load ours, nnabla file": lambda: model.load_parameters(nnabla_file),
    }
    times = {name: [] for name in cases}
    pairs = (
        ("save ours", "save nnabla"),
        ("load ours", "load nnabla", "load ours, nnabla file"),
    )
    for name in cases:  # warm-up: page cache, imports, allocator
        cases[name]()
    with progress("save and load", rounds) as bar:
        for round_index in range(rounds):
            for pair in pairs:
                order = pair if round_index % 2 == 0 else pair[::-1]
                for name in order:
                    gc.collect()
                    times[name].append(_timed(cases[name]))
            bar.update()
    return {name: statistics.median(values) for name, values in times.items()}


def _resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_bytes():
    """This process's peak resident set.

    Linux: ``VmHWM``, which ``clear_refs`` resets. ``ru_maxrss`` would not do: it
    also keeps the peak of the parent that forked this process before ``exec``.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _reset_peak():
    """Resets the peak resident set to the current one; False where the OS cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def measure_peak_here(which, path):
    """In this (fresh) process: bytes the peak RSS rose by during one load."""
    model, _ = build_model()
    gc.collect()
    if _reset_peak():
        baseline = _resident_bytes()
    else:
        baseline = _peak_bytes()
    if which == "ours":
        model.load_parameters(path)
    else:
        nn.load_parameters(path)
    return _peak_bytes() - baseline


def measure_peak(which, path):
    """Runs :func:`measure_peak_here` in a fresh subprocess; returns its bytes."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.checkpoint", "--peak-of", which, path],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])["extra_bytes"]


def measure_peaks(ours_file, nnabla_file, repeats):
    """Median extra peak bytes of each, interleaved fresh subprocesses."""
    peaks = {"ours": [], "nnabla": []}
    with progress("peak memory (fresh processes)", repeats) as bar:
        for _ in range(repeats):
            peaks["ours"].append(measure_peak("ours", ours_file))
            peaks["nnabla"].append(measure_peak("nnabla", nnabla_file))
            bar.update()
    return {name: statistics.median(values) for name, values in peaks.items()}


def report(params, times, peaks):
    sizes = [param.size * param.data.dtype.itemsize for param in params.values()]
    largest = max(sizes)
    memory_target = sum(sizes) + largest
    print(f"model: {sum(sizes) / MB:.1f} MB in {len(sizes)} tensors, "
          f"largest {largest / MB:.1f} MB")
    print(f"nn.load_parameters: {times['load nnabla'] * 1e3:.1f} ms")
    met = []
    print("  (a file nn.save_parameters wrote has no checksums: its structure is checked "
          "in Python first)")
    for case, what in (("load ours", "saved by the module"),
                       ("load ours, nnabla file", "saved by nn.save_parameters")):
        ratio = times[case] / times["load nnabla"]
        met.append(figure(f"load .h5 {what}",
                          f"{ratio:.2f} x nn.load_parameters ({times[case] * 1e3:.1f} ms)",
                          f"<= {TIME_TARGET:.2f}", ratio <= TIME_TARGET))
    print(f"  save .h5: ours {times['save ours'] * 1e3:.1f} ms (atomic, fsync), "
          f"nn.save_parameters {times['save nnabla'] * 1e3:.1f} ms (no fsync), "
          f"ratio {times['save ours'] / times['save nnabla']:.2f}")
    met.append(figure("peak RSS during load, above the model",
                      f"{peaks['ours'] / MB:.1f} MB (nn.load_parameters "
                      f"{peaks['nnabla'] / MB:.1f} MB)",
                      f"<= old values + one tensor ({memory_target / MB:.0f} MB)",
                      peaks["ours"] <= memory_target))
    return all(met)


def main(argv=None):
    """Runs the benchmark and prints the figures; returns 0 when the targets are met."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.checkpoint", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=11, help="timed rounds (default 11)")
    parser.add_argument("--peak-repeats", type=int, default=3, help="subprocesses per side")
    parser.add_argument("--peak-of", nargs=2, metavar=("WHICH", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peak_of:
        which, path = args.peak_of
        print(json.dumps({"extra_bytes": measure_peak_here(which, path)}))
        return 0
    model, params = build_model()
    with tempfile.TemporaryDirectory(prefix="nm-bench-") as folder:
        ours_file = os.path.join(folder, "ours.h5")
        nnabla_file = os.path.join(folder, "nnabla.h5")
        model.save_parameters(ours_file)
        nn.save_parameters(nnabla_file)
        times = measure_times(model, ours_file, nnabla_file, args.rounds)
        peaks = measure_peaks(ours_file, nnabla_file, args.peak_repeats)
    return 0 if report(params, times, peaks) else 1


if __name__ == "__main__":
    sys.exit(main())
