"""Registry size and resident memory while a model is rebuilt 1,000 times in one process.

The notebook pattern: ``model = ResUnit(...)`` run again and again. Auto-named
roots drop the stale entries of their dead predecessor when they take its name;
named roots reuse their entries (PF's rule). Both must stay bounded.
"""

import argparse
import resource

import nnabla as nn
import nnabla.functions as F
import nnabla.solvers as S
import numpy as np

import nnabla_modules as nm

from .common import figure, progress


class ResUnit(nm.Module):
    def __init__(self, channels):
        self.conv0 = nm.Conv2d(channels, channels, (3, 3), pad=(1, 1))
        self.bn0 = nm.BatchNorm2d(channels)
        self.conv1 = nm.Conv2d(channels, channels, (3, 3), pad=(1, 1))
        self.bn1 = nm.BatchNorm2d(channels)

    def __call__(self, x):
        h = F.relu(self.bn0(self.conv0(x)))
        return F.relu(x + self.bn1(self.conv1(h)))


def rss_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def rebuild(count, named, channels=32):
    x = nn.Variable.from_numpy_array(np.random.RandomState(0).randn(4, channels, 8, 8))
    sizes, rss = [], []
    with progress(f"rebuilds, {'given' if named else 'automatic'} names", count) as bar:
        for step in range(count):
            model = ResUnit(channels, name="net") if named else ResUnit(channels)
            loss = F.mean(model(x))
            solver = S.Sgd(1e-3)
            solver.set_parameters(model.get_parameters())
            loss.forward()
            loss.backward()
            solver.update()
            if step in (0, 9, 99) or step == count - 1:
                sizes.append((step + 1, len(nn.get_parameters(grad_only=False))))
                rss.append((step + 1, rss_mib()))
            bar.update()
    return sizes, rss


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1000, help="rebuilds per kind")
    args = parser.parse_args(argv)
    count = max(args.rounds, 100)
    figures = {}
    print(f"\nrebuilding a ResUnit {count} times in one process")
    print(f"  {'names':<12}{'after':>8}{'registry entries':>18}{'RSS MiB':>10}")
    for named in (False, True):
        nn.clear_parameters()
        sizes, rss = rebuild(count, named)
        kind = "given" if named else "automatic"
        for (step, size), (_, mib) in zip(sizes, rss):
            print(f"  {kind:<12}{step:>8}{size:>18}{mib:>10.1f}")
        figures[kind] = {"registry": sizes[-1][1], "rss growth MiB": rss[-1][1] - rss[1][1]}
        # Bounded: the registry holds after the last rebuild what it held after the 10th.
        figure(f"registry after {count:,} rebuilds, {kind} names",
               f"{sizes[-1][1]} entries (after 10: {sizes[1][1]}); RSS "
               f"{rss[-1][1] - rss[1][1]:+.1f} MiB", "bounded", sizes[-1][1] == sizes[1][1])
    return figures


if __name__ == "__main__":
    main()
