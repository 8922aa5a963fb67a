"""NNabla's own tests, run without this library and with it imported: the same results.

    python scripts/nnabla_suite.py NNABLA_TEST_DIR [TEST_PATH ...] [-- PYTEST_ARGS]

``NNABLA_TEST_DIR``: the ``python/test`` folder of sony/nnabla at the tag of the
installed release (not part of this repository). ``TEST_PATH``: files or
folders under it (default: ``DEFAULT_TESTS``, with ``DEFAULT_ARGS``);
``PYTEST_ARGS``: more arguments to pytest. Runs pytest twice, one process at a
time: once plain, once with this module loaded as a plugin (``-p
nnabla_suite``) that imports ``nnabla_modules`` before any test. Both runs
count the imports that failed while the tests ran (not while they were
collected), and those of them that went to the finders: with the library,
only imports of names it does not mark missing. Prints both summaries, the
failed imports of each and whether the outcome of every test is the same;
exit status 0 when it is.
docs/nnabla_process.md says why.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile

_HERE = os.path.dirname(os.path.abspath(__file__))
# The tracer's file alone: importing the package would change the run without it.
_spec = importlib.util.spec_from_file_location(
    "_nnabla_modules_imports", os.path.join(_HERE, os.pardir, "nnabla_modules", "_imports.py"))
_imports = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_imports)

#: The tests of the graph, parameters, parametric functions, solvers and saving,
#: and the function tests of the layers this library wraps and common operations.
DEFAULT_TESTS = (
    "test_graph.py", "test_parameter.py", "test_parametric_functions.py",
    "test_save_load_parameters.py", "test_variable.py", "test_grad.py", "solver",
    *(f"function/test_{name}.py" for name in (
        "affine", "convolution", "deconvolution", "batch_normalization", "embed", "relu",
        "add2", "mul2", "reduction", "softmax_cross_entropy", "max_pooling",
        "average_pooling", "concatenate", "reshape", "dropout",
    )),
)

#: 11,520 parametrizations of the two min-max quantized layers: three quarters of the
#: parametric-function tests, and the same code paths as the layers they quantize.
DEFAULT_ARGS = ("-k", "not min_max_quantized")

_REPORT = "NNABLA_SUITE_REPORT"  # set by the driver in the plugin's process
_WITH_LIBRARY = "NNABLA_SUITE_WITH_LIBRARY"

# --- the plugin: loaded into pytest's process with -p nnabla_suite -------------------

if _REPORT in os.environ:
    if os.environ.get(_WITH_LIBRARY) == "1":
        import nnabla_modules  # noqa: F401
    _tracer = _imports.FailedImports().__enter__()
    _outcomes = {}

    def pytest_collection_finish(session):
        _tracer.names.clear()
        _tracer.searched.clear()

    def pytest_runtest_logreport(report):
        if report.when == "call" or report.outcome != "passed":  # the first that did not pass
            if _outcomes.get(report.nodeid, "passed") == "passed":
                _outcomes[report.nodeid] = report.outcome

    def pytest_unconfigure(config):
        with open(os.environ[_REPORT], "w") as file:
            json.dump({"failed": _tracer.names, "searched": _tracer.searched,
                       "outcomes": _outcomes}, file)


# --- the driver --------------------------------------------------------------------------


def _run(test_dir, tests, pytest_args, with_library):
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        env = dict(os.environ, **{_REPORT: report.name, _WITH_LIBRARY: str(int(with_library))},
                   PYTHONPATH=os.pathsep.join([_HERE, os.environ.get("PYTHONPATH", "")]))
        env.pop("NNABLA_MODULES_KEEP_IMPORTS", None)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
             "nnabla_suite", *pytest_args, *tests],
            cwd=test_dir, env=env, capture_output=True, text=True)
        summary = done.stdout.strip().splitlines()[-1:] or [done.stderr.strip()]
        with open(report.name) as file:
            return summary[0], json.load(file)


def main(argv):
    if not argv:
        sys.exit(__doc__)
    test_dir, rest = argv[0], argv[1:]
    tests, pytest_args = rest, []
    if "--" in rest:
        tests, pytest_args = rest[:rest.index("--")], rest[rest.index("--") + 1:]
    if not tests:
        tests, pytest_args = list(DEFAULT_TESTS), pytest_args or list(DEFAULT_ARGS)
    results = {}
    for with_library in (False, True):
        label = "with nnabla_modules" if with_library else "without nnabla_modules"
        print(f"{label}: running {len(tests)} test paths ...", file=sys.stderr, flush=True)
        summary, results[label] = _run(test_dir, tests, pytest_args, with_library)
        print(f"{label}: {summary}")
        for key, what in (("failed", "imports failed"), ("searched", "of them searched for")):
            counts = sorted(results[label][key].items(), key=lambda item: -item[1])
            print(f"  {what} while the tests ran: {sum(c for _, c in counts)} "
                  f"({', '.join(f'{name} x{count}' for name, count in counts)})")
    outcomes = [r["outcomes"] for r in results.values()]
    same = outcomes[0] == outcomes[1]
    print(f"the same outcome for each of {len(outcomes[0])} tests: {'yes' if same else 'NO'}")
    for nodeid in sorted(set(outcomes[0]) | set(outcomes[1])):
        if outcomes[0].get(nodeid) != outcomes[1].get(nodeid):
            print(f"  {nodeid}: {outcomes[0].get(nodeid)} / {outcomes[1].get(nodeid)}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
