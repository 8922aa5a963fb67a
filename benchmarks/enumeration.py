"""``get_parameters`` over 100, 1,000 and 10,000 layers, against ``nn.get_parameters``.

Targets: at 10,000 layers, at most 1.2x ``nn.get_parameters``' time; growth
from 1,000 to 10,000 layers, time(10,000) / time(1,000), within 1.2x of PF's
own growth, i.e. linear like PF's.

Each size is timed twice: in a loop (hot caches) and with the CPU's caches
evicted before every call (cold), which is how a training script meets it:
between two calls runs a training step. The growth from 100 layers is printed
too. In a hot loop 100 layers fit in the 2 MiB second-level cache and 10,000
do not, which costs both libraries the same few hundred nanoseconds per layer;
ours spends less time per layer than PF's, so the same cost is a larger part
of its time (see benchmarks/README.md).
"""

import argparse
import statistics

import nnabla as nn

import nnabla_modules as nm

from .common import CacheEvictor, figure, interleaved

SIZES = (100, 1000, 10000)
GROWTH_FROM = 1000
ABSOLUTE_TARGET = GROWTH_TARGET = 1.2


class Wide(nm.Module):
    def __init__(self, n_layers):
        self.layers = [nm.Affine(2, 2) for _ in range(n_layers)]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def measure(n_layers, rounds, evict):
    """``{"hot": {"pf": s, "ours": s}, "cold": {...}}``: median seconds per call."""
    nn.clear_parameters()
    model = Wide(n_layers, name="wide")
    model.get_parameters()  # creates them

    def pf():
        with nn.parameter_scope("wide"):
            return nn.get_parameters()

    assert list(pf()) == list(model.get_parameters())  # the same keys, relative
    cases = {"pf": pf, "ours": model.get_parameters}
    medians = {}
    for mode, before in (("hot", None), ("cold", evict)):
        samples = interleaved(cases, rounds, label=f"get_parameters, {n_layers} layers, {mode}",
                              before=before)
        medians[mode] = {name: statistics.median(times) for name, times in samples.items()}
    return medians


def growth(medians, start, mode):
    """Ours' growth from ``start`` layers to the largest size, relative to PF's."""
    grown = {name: medians[SIZES[-1]][mode][name] / medians[start][mode][name]
             for name in ("pf", "ours")}
    return grown, grown["ours"] / grown["pf"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    evict = CacheEvictor()
    medians = {n: measure(n, args.rounds, evict) for n in SIZES}
    for mode in ("hot", "cold"):
        print(f"\nget_parameters() over N layers, {mode} caches (median ms)")
        print(f"  {'N':>8}{'pf':>12}{'ours':>12}{'ours / pf':>12}")
        for n in SIZES:
            m = medians[n][mode]
            print(f"  {n:>8}{m['pf'] * 1e3:>12.3f}{m['ours'] * 1e3:>12.3f}"
                  f"{m['ours'] / m['pf']:>12.3f}")
        for start in SIZES[:-1]:
            grown, relative = growth(medians, start, mode)
            print(f"  growth {start} -> {SIZES[-1]}: pf {grown['pf']:.1f}x, ours "
                  f"{grown['ours']:.1f}x, ours / pf {relative:.2f}")
    print()
    results = {"medians": medians}
    for mode in ("hot", "cold"):
        largest = medians[SIZES[-1]][mode]["ours"] / medians[SIZES[-1]][mode]["pf"]
        relative = growth(medians, GROWTH_FROM, mode)[1]
        figure(f"get_parameters, {SIZES[-1]:,} layers, {mode}",
               f"{largest:.2f} x nn.get_parameters", f"<= {ABSOLUTE_TARGET:.1f}",
               largest <= ABSOLUTE_TARGET)
        figure(f"get_parameters growth {GROWTH_FROM:,} -> {SIZES[-1]:,}, {mode}",
               f"{relative:.2f} x PF's growth", f"<= {GROWTH_TARGET:.1f}",
               relative <= GROWTH_TARGET)
        results[mode] = {"absolute": largest, "relative growth": relative}
    return results


if __name__ == "__main__":
    main()
