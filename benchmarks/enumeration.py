"""``get_parameters`` over 100, 1,000 and 10,000 layers, against ``nn.get_parameters``.

The growth ratio is time(10,000 layers) / time(100 layers); ours should grow
like PF's own enumeration (within 1.2x of its growth), i.e. stay linear, and
take at most 1.2x its time at 10,000 layers.
"""

import argparse
import statistics

import nnabla as nn

import nnabla_modules as nm

from .common import figure, interleaved

SIZES = (100, 1000, 10000)
ABSOLUTE_TARGET = GROWTH_TARGET = 1.2


class Wide(nm.Module):
    def __init__(self, n_layers):
        self.layers = [nm.Affine(2, 2) for _ in range(n_layers)]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def measure(n_layers, rounds):
    nn.clear_parameters()
    model = Wide(n_layers, name="wide")
    model.get_parameters()  # creates them

    def pf():
        with nn.parameter_scope("wide"):
            return nn.get_parameters()

    assert list(pf()) == list(model.get_parameters())  # the same keys, relative
    samples = interleaved({"pf": pf, "ours": model.get_parameters}, rounds,
                          label=f"get_parameters, {n_layers} layers")
    return {name: statistics.median(times) for name, times in samples.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    medians = {n: measure(n, args.rounds if n < 10000 else max(3, args.rounds // 3))
               for n in SIZES}
    print("\nget_parameters() over N layers (median ms)")
    print(f"  {'N':>8}{'pf':>12}{'ours':>12}{'ours / pf':>12}")
    for n, m in medians.items():
        print(f"  {n:>8}{m['pf'] * 1e3:>12.3f}{m['ours'] * 1e3:>12.3f}"
              f"{m['ours'] / m['pf']:>12.3f}")
    growth = {name: medians[SIZES[-1]][name] / medians[SIZES[0]][name] for name in ("pf", "ours")}
    relative = growth["ours"] / growth["pf"]
    largest = medians[SIZES[-1]]["ours"] / medians[SIZES[-1]]["pf"]
    print(f"  growth {SIZES[0]} -> {SIZES[-1]}: pf {growth['pf']:.1f}x, ours "
          f"{growth['ours']:.1f}x")
    figure(f"get_parameters, {SIZES[-1]:,} layers", f"{largest:.2f} x nn.get_parameters",
           f"<= {ABSOLUTE_TARGET:.1f}", largest <= ABSOLUTE_TARGET)
    figure(f"get_parameters growth {SIZES[0]} -> {SIZES[-1]:,}", f"{relative:.2f} x PF's growth",
           f"<= {GROWTH_TARGET:.1f}", relative <= GROWTH_TARGET)
    return {"medians": medians, "growth": growth, "relative growth": relative,
            "absolute": largest}


if __name__ == "__main__":
    main()
