"""Timing helpers: interleaved rounds, medians, ratios to plain PF code in the same run;
progress on stderr and every figure printed beside its target."""

import gc
import statistics
import sys
import time

from tqdm import tqdm


def progress(label, total):
    """A progress bar on stderr (stdout keeps the figures only)."""
    return tqdm(total=total, desc=label, file=sys.stderr, leave=False, dynamic_ncols=True)


def interleaved(cases, rounds, repeat=1, label="rounds", before=None):
    """Times every case once per round, rotating their order; returns per-round seconds.

    Interleaving spreads any drift of the machine (other processes, thermal
    state) over all cases instead of biasing the one that ran last.
    ``before()``, if given, runs untimed before each timed case.
    """
    for fn in cases.values():  # warm up: caches, lazily created parameters
        fn()
    names = list(cases)
    samples = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with progress(label, rounds) as bar:
            for round_index in range(rounds):
                shift = round_index % len(names)
                for name in names[shift:] + names[:shift]:
                    if before is not None:
                        before()
                    start = time.perf_counter()
                    for _ in range(repeat):
                        cases[name]()
                    samples[name].append((time.perf_counter() - start) / repeat)
                gc.collect()
                bar.update()
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


class CacheEvictor:
    """Writes one byte per cache line of a buffer larger than the CPU's caches.

    Called before a timed case, it makes the case start with cold caches, as
    code does that runs between training steps rather than in a loop.
    """

    def __init__(self, size=128 << 20):
        import numpy as np

        self.buffer = np.zeros(size, dtype=np.uint8)

    def __call__(self):
        self.buffer[::64] += 1


def median_ratios(samples, baseline="pf"):
    """Median over rounds of (case / baseline) in the same round."""
    base = samples[baseline]
    return {
        name: statistics.median(s / b for s, b in zip(times, base))
        for name, times in samples.items()
    }


def table(title, samples, baseline="pf", unit="ms", scale=1e3):
    """Prints median time and median ratio to the baseline for each case."""
    ratios = median_ratios(samples, baseline)
    print(f"\n{title}")
    print(f"  {'':<14}{'median ' + unit:>14}{'ratio to ' + baseline:>14}")
    for name, times in samples.items():
        print(f"  {name:<14}{statistics.median(times) * scale:>14.3f}{ratios[name]:>14.3f}")
    return ratios


#: ``(figure, value, target, result)`` of every figure with a target, in order.
FIGURES = []
WITHIN_NOISE = "within noise"


def verdict(met):
    return "met" if met else "missed"


def figure(name, value, target, met, result=None):
    """Prints a figure beside its target and whether it is met; keeps it for the summary.

    ``result`` overrides the plain "met"/"missed" (``WITHIN_NOISE``).
    """
    result = result or verdict(met)
    FIGURES.append((name, value, target, result))
    print(f"  {name}: {value}   [target {target}: {result}]")
    return met


def ratio_figure(name, ratio, target, noise):
    """A ratio's figure: above the target by less than the measured ``noise``, within noise.

    ``noise``: median distance from 1 of the per-round ratios of two cases that
    run the same code (see :func:`noise_of`).
    """
    result = None
    if target < ratio <= target + noise:
        result = WITHIN_NOISE
    return figure(name, f"{ratio:.3f} x PF", f"<= {target:.2f}", ratio <= target, result)


def noise_of(samples, case, baseline="pf"):
    """Median distance from 1 of the per-round ratios of ``case``, running the baseline's code."""
    return statistics.median(abs(s / b - 1) for s, b in zip(samples[case], samples[baseline]))


def summary():
    """The table of every figure and its target, measured in this run; True if all are met."""
    if not FIGURES:
        return True
    width = max(len(name) for name, *_ in FIGURES)
    value_width = max(len(value) for _, value, *_ in FIGURES)
    target_width = max(len(target) for _, _, target, _ in FIGURES)
    print("\n===== summary =====")
    for name, value, target, result in FIGURES:
        print(f"  {name:<{width}}  {value:<{value_width}}  target {target:<{target_width}}  "
              f"{result}")
    met = sum(result == "met" for *_, result in FIGURES)
    noise = sum(result == WITHIN_NOISE for *_, result in FIGURES)
    print(f"\n  {met} of {len(FIGURES)} targets met, {noise} within the measured noise")
    return met + noise == len(FIGURES)
