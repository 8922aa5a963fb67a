"""No constructor argument kills the interpreter: each works or is a named TypeError/ValueError.

Every public layer and container constructor gets arguments of the wrong
type, zero, negative, None and shapes with negative dimensions, one argument
at a time (tests/fuzz_constructors.py), in a subprocess: a case that dies
from a signal is reported by name and the run goes on after it.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent


def _run_from(first):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])}
    return subprocess.run(
        [sys.executable, str(TESTS / "fuzz_constructors.py"), str(first)],
        capture_output=True,
        text=True,
        env=env,
        cwd=TESTS,
        timeout=900,
    )


def run_all_cases():
    """``{label: outcome}``; a case that killed its process has the outcome ``"died: ..."``."""
    outcomes, first = {}, 0
    while True:
        process = _run_from(first)
        started = None
        for line in process.stdout.splitlines():
            kind, index, *rest = line.split(" ", 2)
            if kind == "START":
                started = int(index)
            else:
                label, outcome = json.loads(rest[0])
                outcomes[label] = outcome
                started = None
        if process.returncode == 0:
            return outcomes
        assert started is not None, process.stderr[-2000:]  # died outside a case
        outcomes[f"case {started}"] = f"died: exit status {process.returncode}"
        first = started + 1


def test_no_constructor_argument_kills_the_interpreter():
    outcomes = run_all_cases()
    assert len(outcomes) > 3000  # every layer class, every argument, every bad value
    assert sum(o == "named" for o in outcomes.values()) > 2000
    bad = {label: o for label, o in outcomes.items() if o not in ("ok", "named")}
    assert bad == {}
