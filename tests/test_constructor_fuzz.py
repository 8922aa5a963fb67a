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

import nnabla as nn
import pytest

import nnabla_modules as nm

pytestmark = pytest.mark.slow  # fuzzing in subprocesses: make test-fast skips it

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


def test_the_inputs_that_used_to_kill_the_interpreter():
    assert nm.Linear(None, 3, name="lazy")(nn.Variable((2, 5))).shape == (2, 3)
    errors = [
        (lambda: nm.Linear("8", 3, name="fc"), TypeError, r"Linear 'fc': n_inmaps='8'"),
        (lambda: nm.Linear(0, 3, name="fc"), ValueError, r"Linear 'fc': n_inmaps=0"),
        (lambda: nm.Linear(-4, 3, name="fc"), ValueError, r"Linear 'fc': n_inmaps=-4"),
        (lambda: nm.Linear(4, (3, -1), name="fc"), ValueError, r"n_outmaps=\(3, -1\)"),
        (lambda: nm.BatchNorm2d(0, name="bn"), ValueError, r"BatchNorm2d 'bn': n_features=0"),
        (lambda: nm.Conv2d(3, 8, 3, stride=0, name="c"), ValueError, r"Conv2d 'c': stride=0"),
        (lambda: nm.Conv2d(3, 8, 3, group=2, name="c"), ValueError, r"group=2 does not divide"),
        (lambda: nm.GroupNormalization(8, 4, 3, name="gn"), ValueError, r"num_groups=3"),
        (lambda: nm.LayerNormalization((4, -1), name="ln"), ValueError, r"normalized_shape"),
        (lambda: nm.MeanSubtraction((-3,), name="ms"), ValueError, r"sample_shape"),
        (lambda: nm.ModuleDict({"": nm.Linear(2, 2)}, name="d"), ValueError, r"ModuleDict 'd'"),
    ]
    for make, error, message in errors:
        with pytest.raises(error, match=message):
            make()
    # sizes read from the input are checked at the first call that sees them
    with pytest.raises(ValueError, match=r"GroupNormalization 'gn': num_groups=3"):
        nm.GroupNormalization(num_groups=3, name="gn")(nn.Variable((2, 8, 4, 4)))
    with pytest.raises(ValueError, match=r"Conv2d 'c': group=2 does not divide"):
        nm.Conv2d(None, 4, 3, group=2, name="c")(nn.Variable((1, 3, 5, 5)))


def test_an_empty_dict_key_is_refused_at_assignment():
    class Heads(nm.Module):
        def __init__(self):
            self.heads = {"": nm.Linear(2, 2)}

    with pytest.raises(ValueError, match=r"Heads 'heads'.*the key ''"):
        Heads(name="heads")
