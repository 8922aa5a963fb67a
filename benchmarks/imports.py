"""``import nnabla_modules`` against ``import nnabla``: the import cost we add."""

import argparse
import statistics
import subprocess
import sys
import time


def _import_seconds(module):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    samples = {"nnabla": [], "nnabla_modules": []}
    for round_index in range(args.rounds):
        order = list(samples) if round_index % 2 == 0 else list(reversed(samples))
        for module in order:
            samples[module].append(_import_seconds(module))
    medians = {m: statistics.median(t) for m, t in samples.items()}
    extra_ms = (medians["nnabla_modules"] - medians["nnabla"]) * 1e3
    print("\nimport time (fresh interpreter, median ms)")
    for module, median in medians.items():
        print(f"  {module:<16}{median * 1e3:>10.1f}")
    print(f"  nnabla_modules adds {extra_ms:+.1f} ms (target <= +30 ms)")
    return {"extra ms": extra_ms}


if __name__ == "__main__":
    main()
