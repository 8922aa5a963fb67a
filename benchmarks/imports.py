"""``import nnabla_modules`` against ``import nnabla``: the import cost we add.

Each import runs in a fresh interpreter under ``python -X importtime``, which
reports the time the import statement itself took: the whole process's
wall-clock time (printed too) adds the interpreter's start and exit, which
vary by tens of milliseconds on a shared machine.
"""

import argparse
import statistics
import subprocess
import sys
import time

from .common import figure, progress

TARGET_MS = 30


def _import_seconds(module):
    """``(seconds of the import statement, seconds of the whole process)``."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                          check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    process = time.perf_counter() - start
    for line in reversed(done.stderr.splitlines()):  # "import time: self | cumulative | name"
        fields = line.split("|")
        if len(fields) == 3 and fields[2].rstrip() == f" {module}":  # top level: no indent
            return int(fields[1]) * 1e-6, process
    raise RuntimeError(f"python -X importtime reported no line for {module}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    # nnabla.parametric_functions: what any PF user imports already (nnabla_modules needs it).
    samples = {"nnabla": [], "nnabla.parametric_functions": [], "nnabla_modules": []}
    processes = {module: [] for module in samples}
    with progress("imports", args.rounds) as bar:
        for round_index in range(args.rounds):
            shift = round_index % len(samples)
            order = list(samples)[shift:] + list(samples)[:shift]
            for module in order:
                statement, process = _import_seconds(module)
                samples[module].append(statement)
                processes[module].append(process)
            bar.update()
    medians = {m: statistics.median(t) for m, t in samples.items()}
    extra_ms = (medians["nnabla_modules"] - medians["nnabla"]) * 1e3
    over_pf_ms = (medians["nnabla_modules"] - medians["nnabla.parametric_functions"]) * 1e3
    print("\nimport time (fresh interpreter, median ms)")
    print(f"  {'':<30}{'import':>10}{'process':>10}")
    for module, median in medians.items():
        print(f"  {module:<30}{median * 1e3:>10.1f}"
              f"{statistics.median(processes[module]) * 1e3:>10.1f}")
    print(f"  nnabla_modules adds {over_pf_ms:+.1f} ms to import nnabla.parametric_functions")
    figure("import nnabla_modules", f"{extra_ms:+.1f} ms over import nnabla",
           f"<= +{TARGET_MS} ms", extra_ms <= TARGET_MS)
    return {"extra ms": extra_ms, "over PF ms": over_pf_ms}


if __name__ == "__main__":
    main()
