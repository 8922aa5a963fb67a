"""What importing nnabla_modules changes in NNabla's process (docs/nnabla_process.md).

NNabla's compiled modules try imports in their own package first (``nnabla.nnabla``
before ``nnabla``); the package marks those missing names in ``sys.modules``.
Each test runs a fresh interpreter: what it checks happens at import.
"""

import json
import os
import subprocess
import sys
import textwrap
import weakref

import pytest

from nnabla_modules.core._imports import OPT_OUT, RELATIVE_TRIES


def _run(code, keep_imports=False, tmp_path=None):
    """Runs ``code`` in a fresh interpreter; returns what it printed last, read as JSON."""
    env = {k: v for k, v in os.environ.items() if k != OPT_OUT}
    if keep_imports:
        env[OPT_OUT] = "1"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


#: Imports of the marked names, as NNabla's compiled modules and a user could write them.
STATEMENTS = [
    "import nnabla.nnabla",
    "importlib.import_module('nnabla.nnabla_ext')",
    "import nnabla.h5py",
    "import nnabla.nnabla_ext.cpu",
    "from nnabla import warnings",
    # NNabla's own tries: relative to the package, from inside it, with and without fromlist
    "__import__('nnabla', {'__package__': 'nnabla', '__name__': 'nnabla.function'}, None, None, 1)",
    "__import__('os', {'__package__': 'nnabla', '__name__': 'nnabla.solver'}, None, None, 1)",
    "__import__('nnabla_ext.cpu', {'__package__': 'nnabla', '__name__': 'nnabla.function'}, None,"
    " ['context'], 1)",
]

ERRORS = f"""
    import importlib, json, sys
    import nnabla_modules
    errors = []
    for statement in {STATEMENTS!r}:
        try:
            exec(statement)
            errors.append(None)
        except Exception as error:
            errors.append([type(error).__name__, isinstance(error, ImportError), error.name])
    marked = [n for n in {RELATIVE_TRIES!r} if n in sys.modules and sys.modules[n] is None]
    print(json.dumps([errors, marked]))
"""


def test_marked_names_raise_import_errors_as_before():
    before, kept = _run(ERRORS, keep_imports=True)
    after, marked = _run(ERRORS)
    assert kept == [] and marked == list(RELATIVE_TRIES)
    for statement, old, new in zip(STATEMENTS, before, after):
        assert old is not None and new is not None, statement
        assert old[1] and new[1], statement  # an ImportError, both times
        if statement.startswith("from nnabla import"):
            # Python's import of a name marked missing, not "cannot import name"
            assert (old[0], new[0]) == ("ImportError", "ModuleNotFoundError")
        elif "nnabla_ext.cpu" in statement:
            # the parent is marked: the error names the module asked for
            assert old == ["ModuleNotFoundError", True, "nnabla.nnabla_ext"]
            assert new == ["ModuleNotFoundError", True, "nnabla.nnabla_ext.cpu"]
        else:
            assert old == new and old[0] == "ModuleNotFoundError", statement


TRACED = """
    import json, os, sys
    import nnabla as nn, nnabla.functions as F, nnabla.parametric_functions as PF
    import nnabla.solvers as S, numpy as np
    import nnabla_modules as nm
    from nnabla_modules.core._imports import FailedImports

    class Net(nm.Module):
        def __init__(self):
            self.conv = nm.Conv2d(3, 4, (3, 3), pad=(1, 1))
            self.bn = nm.BatchNorm2d(4)
            self.fc = nm.Affine(4 * 8 * 8, 5)

        def __call__(self, x, test=False):
            return self.fc(F.relu(self.bn(self.conv(x), test)))

    def pf_net(x, test=False):
        h = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="conv")
        h = PF.batch_normalization(h, batch_stat=not test, name="bn")
        return PF.affine(F.relu(h), 5, name="fc")

    x = nn.Variable.from_numpy_array(np.random.RandomState(0).randn(2, 3, 8, 8).astype("f"))
    net = Net()
    phases = {}
    for style, model, parameters in (("pf", pf_net, nn.get_parameters),
                                     ("module", net, net.get_parameters)):
        def static():
            loss = F.mean(model(x))
            loss.forward()
            loss.backward()

        def dynamic():
            with nn.auto_forward():
                loss = F.mean(model(x))
            loss.backward(clear_buffer=True)
            model(x, test=True)

        def solvers():
            for solver in (S.Sgd(), S.Momentum(), S.Adam(), S.AdamW(), S.Nesterov(), S.RMSprop()):
                solver.set_parameters(parameters())
                solver.zero_grad()
                solver.update()
                solver.weight_decay(1e-4)
            solver.save_states("states.h5")
            solver.load_states("states.h5")

        def files():
            for path in ("p.h5", "p.protobuf"):
                nn.save_parameters(path)
                nn.load_parameters(path)
            net.save_parameters("m.h5")
            net.load_parameters("m.h5")

        for phase in (static, dynamic, solvers, files):
            with FailedImports() as failed:
                phase()
            phases[f"{style} {phase.__name__}"] = [failed.names, failed.searched]
    print(json.dumps(phases))
"""


def test_no_import_searched_in_vain_on_the_paths_of_build_run_update_save_and_load(tmp_path):
    phases = _run(TRACED, tmp_path=tmp_path)
    assert len(phases) == 8
    for phase, (failed, searched) in phases.items():
        assert searched == {}, phase  # every import that fails is of a name marked missing
        assert set(failed) <= set(RELATIVE_TRIES), phase
    assert phases["pf static"][0]["nnabla.nnabla"] > 0  # the tries are still made


def test_the_opt_out_leaves_nnabla_as_it_was(tmp_path):
    phases = _run(TRACED, keep_imports=True, tmp_path=tmp_path)
    for phase in ("pf static", "module dynamic"):
        assert phases[phase][1]["nnabla.nnabla"] > 0
        assert phases[phase][1]["nnabla.nnabla.variable"] > 0
    assert phases["module files"][1]["nnabla.nnabla_ext"] > 0


@pytest.mark.parametrize("name", ["h5py", "nnabla_ext"])
def test_a_module_of_a_marked_name_that_exists_is_not_hidden(tmp_path, name):
    (tmp_path / f"{name}.py").write_text("FOUND = 'the module in the extra folder'\n")
    found = _run(f"""
        import json, sys
        import nnabla
        nnabla.__path__.append({str(tmp_path)!r})  # nnabla.{name} now exists
        import nnabla_modules
        import nnabla.{name}
        inside = [n for n in sys.modules if n.startswith("nnabla.{name}.")]
        print(json.dumps([nnabla.{name}.FOUND, sys.modules["nnabla.nnabla"] is None, inside]))
    """)
    # found, while the other names are marked; nothing inside it is marked either
    assert found == ["the module in the extra folder", True, []]


@pytest.mark.parametrize("name", RELATIVE_TRIES)
def test_the_import_lock_of_each_marked_name_is_made_once(name):
    # Python takes a name's lock at each import of it, and makes the lock anew
    # unless someone holds it: a lock nobody holds dies with its last use.
    import importlib._bootstrap

    lock = weakref.ref(importlib._bootstrap._get_module_lock(name))
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)
    assert lock() is not None and importlib._bootstrap._get_module_lock(name) is lock()
