"""Timing helpers: interleaved rounds, medians, ratios to plain PF code in the same run."""

import gc
import statistics
import time


def interleaved(cases, rounds, repeat=1):
    """Times every case once per round, rotating their order; returns per-round seconds.

    Interleaving spreads any drift of the machine (other processes, thermal
    state) over all cases instead of biasing the one that ran last.
    """
    for fn in cases.values():  # warm up: caches, lazily created parameters
        fn()
    names = list(cases)
    samples = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for round_index in range(rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                for _ in range(repeat):
                    cases[name]()
                samples[name].append((time.perf_counter() - start) / repeat)
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


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
