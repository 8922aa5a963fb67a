"""Every code example of the README, the docs and the docstrings runs here.

* Markdown files (README.md, docs/*.md): the ```python and ```pycon blocks of a
  file run in order in one namespace, in a temporary directory, from an empty
  registry. A block made of ``>>>`` lines is a doctest (its printed output is
  checked); any other block is executed as a script (its ``assert`` lines are
  the checks). A comment line just before a block can mark it:
  ``% test: skip <reason>`` (MyST) or ``<!-- test: skip <reason> -->`` (README)
  never runs it (GPU code); ``test: requires <module>`` skips it, and the rest
  of the file, while that module cannot be imported.
* Docstrings: every ``>>>`` example of every module of ``nnabla_modules``.
* The examples: ``examples/migration.py`` and a two-epoch run of
  ``examples/train_digits.py`` on a subset, with the files it writes.
* The Sphinx build (``make docs``) with warnings as errors, where Sphinx is installed.
"""

import doctest
import gc
import importlib
import importlib.util
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nnabla_modules

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MARKDOWN = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]  # all of them, for the markers
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
MARKER = re.compile(
    r"^\s*(?:%|<!--)\s*test:\s*(?P<what>skip|requires)\s*(?P<arg>.*?)\s*(?:-->)?\s*$"
)


class Block:
    def __init__(self, path, line, language, code, marker):
        self.path, self.line, self.language, self.code, self.marker = (
            path, line, language, code, marker)  # fmt: skip

    @property
    def is_doctest(self):
        return self.language == "pycon" or self.code.lstrip().startswith(">>>")

    def where(self):
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def code_blocks(path):
    """The ```python / ```pycon blocks of a Markdown file, with the marker before each."""
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info = match.group("fence"), match.group("info").strip()
        start = i + 1
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            i += 1
        language = info.split()[0] if info else ""
        if language in ("python", "pycon"):
            previous = lines[start - 2] if start >= 2 else ""
            marker = MARKER.match(previous)
            indent = len(match.group("indent"))
            code = "\n".join(line[indent:] for line in lines[start:i])
            blocks.append(Block(path, start + 1, language, code + "\n", marker))
        i += 1
    return blocks


def run_block(block, namespace):
    if block.is_doctest:
        test = doctest.DocTestParser().get_doctest(
            block.code, namespace, block.where(), str(block.path), block.line - 1
        )
        runner = doctest.DocTestRunner(optionflags=FLAGS)
        output = []
        runner.run(test, out=output.append, clear_globs=False)
        namespace.update(test.globs)  # the next blocks see what this one defined
        if runner.failures:
            pytest.fail(f"doctest failed at {block.where()}:\n" + "".join(output), pytrace=False)
    else:
        exec(compile(block.code, block.where(), "exec"), namespace)


def _free_other_pages():
    """Frees the models of pages that other tests executed, so automatic names are free.

    A class defined by an exec'd page and its methods refer to the page's
    namespace, a reference cycle that only the collector frees.
    """
    gc.collect()


@pytest.mark.parametrize(
    "path", [p for p in MARKDOWN if code_blocks(p)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_markdown_examples(path, tmp_path, monkeypatch):
    _free_other_pages()
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    try:
        for block in code_blocks(path):
            if block.marker is not None:
                what, arg = block.marker.group("what"), block.marker.group("arg")
                if what == "skip":
                    continue
                if importlib.util.find_spec(arg) is None:
                    pytest.skip(f"{block.where()} and after need {arg}, not importable yet")
            run_block(block, namespace)
    finally:
        # The page's classes may outlive the test (caches keyed by class); their
        # functions' globals are this dict: empty it, so the page's models die
        # now and their automatic names are free for the next test.
        namespace.clear()


def test_the_main_pages_have_examples():
    for name in (
        "README.md",
        "quickstart.md",
        "concepts.md",
        "migration.md",
        "gpu.md",
        "multi_gpu.md",
        "faq.md",
    ):
        path = ROOT / name if name == "README.md" else DOCS / name
        runs = [b for b in code_blocks(path) if not b.marker or b.marker.group("what") != "skip"]
        assert runs, f"{name}: no example runs"


def test_markers_are_understood():
    for path in MARKDOWN:
        for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            if re.search(r"(%|<!--)\s*test:", line):
                assert MARKER.match(line), f"{path.name}:{number}: unknown marker {line!r}"


# --- docstrings -------------------------------------------------------------------


def _docstring_tests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    names = [nnabla_modules.__name__] + [
        info.name
        for info in pkgutil.walk_packages(nnabla_modules.__path__, nnabla_modules.__name__ + ".")
        if not info.name.endswith("__main__")
    ]
    for name in sorted(names):
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if test.examples:
                tests.append(test)
    return sorted(tests, key=lambda t: t.name)


DOCSTRING_TESTS = _docstring_tests()


def test_docstrings_have_examples():
    assert len(DOCSTRING_TESTS) >= 20


@pytest.mark.parametrize("test", DOCSTRING_TESTS, ids=lambda t: t.name)
def test_docstring_examples(test, tmp_path, monkeypatch):
    _free_other_pages()
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    output = []
    runner.run(test, out=output.append)
    if runner.failures:
        pytest.fail("".join(output), pytrace=False)


# --- the API reference covers the package ----------------------------------------------


def test_api_reference_covers_every_public_name():
    api = (DOCS / "api.md").read_text(encoding="utf-8")
    modules = set(re.findall(r"^\.\. automodule:: (\S+)", api, re.M))
    objects = set(
        re.findall(r"^\.\. auto(?:class|function|exception):: nnabla_modules\.(\S+)", api, re.M)
    )
    for name in nnabla_modules.__all__:
        module = getattr(nnabla_modules, name).__module__
        assert module in modules or name in objects, (
            f"{name} ({module}) is missing from docs/api.md"
        )


# --- the examples --------------------------------------------------------------------


def _run_example(*args, timeout=120):
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_migration_example():
    out = _run_example("examples/migration.py")
    assert "migration checks passed" in out


def test_training_example_one_epoch(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("tqdm")
    pytest.importorskip("matplotlib")
    pytest.importorskip("nnabla_modules.checkpoint")  # model.save_parameters
    checkpoint = tmp_path / "digits.h5"
    out = _run_example(
        "examples/train_digits.py", "--epochs", "2", "--train-limit", "256",
        "--checkpoint", str(checkpoint),
    )  # fmt: skip
    assert checkpoint.exists()
    epochs = re.findall(
        r"^epoch  (\d)  loss (\S+)  train accuracy (\S+)  validation accuracy (\S+)  "
        r"(\S+) s(  saved .*)?$",
        out,
        re.M,
    )
    final = re.search(r"final validation accuracy (\S+)", out)
    assert [e[0] for e in epochs] == ["1", "2"] and final, out
    assert "\r" not in out  # no progress bar frames in the log: tqdm writes to stderr
    # the reloaded fresh model predicts exactly what the saved (best) one did
    best = max(float(e[3]) for e in epochs)
    assert float(final.group(1)) == best

    # nnabla.monitor series next to the checkpoint hold what the epoch lines say
    monitor = tmp_path / "digits_monitor"
    series = {p.name: p.read_text().split("\n")[:-1] for p in monitor.iterdir()}
    assert sorted(series) == [
        "epoch-loss.series.txt", "epoch-time.timer.txt", "training-accuracy.series.txt",
        "training-loss.series.txt", "validation-accuracy.series.txt",
    ]  # fmt: skip
    steps = 2 * (256 // 64)
    assert [int(line.split()[0]) for line in series["training-loss.series.txt"]] == list(
        range(1, steps + 1)
    )
    for name, column in (("epoch-loss", 1), ("training-accuracy", 2), ("validation-accuracy", 3)):
        logged = [line.split() for line in series[name + ".series.txt"]]
        assert [int(i) for i, _ in logged] == [1, 2]
        assert [float(v) for _, v in logged] == pytest.approx(
            [float(e[column]) for e in epochs], abs=1e-4
        )
    # the training curve is a real PNG drawn from them
    from matplotlib.image import imread

    image = imread(tmp_path / "digits_curve.png")
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
    assert image[..., :3].std() > 0.05  # not a blank canvas


@pytest.mark.skipif(
    importlib.util.find_spec("nnabla_ext.cudnn") is not None, reason="the CUDA extension is here"
)
def test_training_example_without_the_cuda_extension_says_what_to_install(tmp_path):
    pytest.importorskip("sklearn")
    result = subprocess.run(
        [sys.executable, "examples/train_digits.py", "--context", "cudnn",
         "--checkpoint", str(tmp_path / "x.h5")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "install the [cuda] extra: pip install -e '.[cuda]'" in result.stderr
    assert not list(tmp_path.iterdir())  # stopped before writing anything


def _training_example_module():
    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "examples/train_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_example_warns_of_half_precision_on_the_cpu(capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("tqdm")
    example = _training_example_module()
    ctx = example.extension_context(example.parse_args(["--type-config", "half"]))
    assert ctx.backend[0] == "cpu:half"
    assert "half on the CPU runs about 150x slower" in capsys.readouterr().err
    example.extension_context(example.parse_args([]))
    assert capsys.readouterr().err == ""


def test_demo_example():
    _run_example("examples/demo.py")


# --- the Sphinx build ------------------------------------------------------------------


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
