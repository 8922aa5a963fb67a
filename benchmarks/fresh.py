"""What a user sees: PF code in a process without nnabla_modules, module code in one with it.

Each round runs, for each network, one fresh process of plain PF code (which
never imports nnabla_modules) and one of the same network written with
nnabla_modules, in alternating order (``benchmarks.fresh_worker``). Each
process times its graph construction and its dynamic training step (build,
forward, backward, update); the figures are the medians over rounds of the
per-round ratio, module code / PF code. The difference includes what importing
nnabla_modules changes in NNabla's process (docs/nnabla_process.md).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

from .common import figure, progress

#: (model, task): the module code's time / the PF code's, fresh processes, medians.
TARGETS = {
    ("mlp", "build"): 0.40,
    ("conv-bn", "build"): 0.50,
    ("resnet18", "build"): 0.55,
    ("mlp", "step"): 0.55,
    ("conv-bn", "step"): 0.60,
}
LABELS = {"mlp": "MLP-200", "conv-bn": "conv-BN stack (20)", "resnet18": "ResNet-18",
          "build": "graph construction", "step": "dynamic step"}
STYLES = ("pf", "ours")


def _worker(style, model, samples):
    env = dict(os.environ)
    env.pop("NNABLA_MODULES_KEEP_IMPORTS", None)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "benchmarks.fresh_worker", style, model,
                           str(samples)], cwd=root, env=env, check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--samples", type=int, default=15, help="timed calls in each process")
    args = parser.parse_args(argv)
    models = sorted({model for model, _ in TARGETS}, key=list(LABELS).index)
    times = {key: {style: [] for style in STYLES} for key in TARGETS}
    with progress("fresh processes", args.rounds * len(models)) as bar:
        for round_index in range(args.rounds):
            order = STYLES if round_index % 2 == 0 else STYLES[::-1]
            for model in models:
                for style in order:
                    for task, seconds in _worker(style, model, args.samples).items():
                        times[model, task][style].append(seconds)
                bar.update()
    print("\nfresh processes: PF code without nnabla_modules, module code with it "
          f"({args.rounds} rounds, medians)")
    print(f"  {'':<40}{'PF ms':>10}{'ours ms':>10}{'ratio':>8}")
    ratios = {}
    for model, task in TARGETS:
        pf, ours = times[model, task]["pf"], times[model, task]["ours"]
        ratios[model, task] = statistics.median(o / p for o, p in zip(ours, pf))
        print(f"  {LABELS[model] + ' ' + LABELS[task]:<40}{statistics.median(pf) * 1e3:>10.2f}"
              f"{statistics.median(ours) * 1e3:>10.2f}{ratios[model, task]:>8.3f}")
    for (model, task), target in TARGETS.items():
        figure(f"fresh {LABELS[model]} {LABELS[task]}", f"{ratios[model, task]:.3f} x PF",
               f"<= {target:.2f}", ratios[model, task] <= target)
    return times


if __name__ == "__main__":
    main()
