"""``import nnabla_modules`` against ``import nnabla``: the import cost we add."""

import argparse
import statistics
import subprocess
import sys
import time

from .common import figure, progress

TARGET_MS = 30


def _import_seconds(module):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    # nnabla.parametric_functions: what any PF user imports already (nnabla_modules needs it).
    samples = {"nnabla": [], "nnabla.parametric_functions": [], "nnabla_modules": []}
    with progress("imports", args.rounds) as bar:
        for round_index in range(args.rounds):
            shift = round_index % len(samples)
            order = list(samples)[shift:] + list(samples)[:shift]
            for module in order:
                samples[module].append(_import_seconds(module))
            bar.update()
    medians = {m: statistics.median(t) for m, t in samples.items()}
    extra_ms = (medians["nnabla_modules"] - medians["nnabla"]) * 1e3
    over_pf_ms = (medians["nnabla_modules"] - medians["nnabla.parametric_functions"]) * 1e3
    print("\nimport time (fresh interpreter, median ms)")
    for module, median in medians.items():
        print(f"  {module:<30}{median * 1e3:>10.1f}")
    print(f"  nnabla_modules adds {over_pf_ms:+.1f} ms to import nnabla.parametric_functions")
    figure("import nnabla_modules", f"{extra_ms:+.1f} ms over import nnabla",
           f"<= +{TARGET_MS} ms", extra_ms <= TARGET_MS)
    return {"extra ms": extra_ms, "over PF ms": over_pf_ms}


if __name__ == "__main__":
    main()
