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
* The Sphinx build (``make docs``) with warnings as errors, where Sphinx is installed,
  and the built site: links, images and anchors resolve, each page is in the
  navigation once, every public class, function and argument is documented;
  the checker of ``make docs-check`` finds broken pages (in Chromium where
  installed); the generated figures in docs/images are up to date.
"""

import ast
import doctest
import gc
import importlib
import importlib.util
import inspect
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


# --- the examples as a type checker reads them ------------------------------------------


def _example_source(block_code, is_doctest):
    if not is_doctest:
        return block_code
    return "".join(e.source for e in doctest.DocTestParser().get_examples(block_code))


def test_a_type_checker_accepts_the_name_each_example_gives_its_own_module(tmp_path):
    """Every ``MyModule(..., name=...)`` of the docs and docstrings is one mypy accepts.

    The module takes ``name=`` whatever ``__init__`` declares, but a type
    checker reads ``__init__``: the examples' classes declare it, as
    docs/concepts.md says a user's class should.
    """
    pytest.importorskip("mypy")
    pages = {
        page.stem: [_example_source(block.code, block.is_doctest) for block in code_blocks(page)]
        for page in MARKDOWN
    }
    pages["docstrings"] = [_example_source(t.docstring, True) for t in DOCSTRING_TESTS]
    for page, sources in pages.items():
        (tmp_path / f"{page}.py").write_text("\n".join(sources), encoding="utf-8")
    command = [sys.executable, "-m", "mypy", "--ignore-missing-imports", "--no-incremental"]
    result = subprocess.run(command + [str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert "Found" in result.stdout or "Success" in result.stdout, result.stdout + result.stderr
    refused = re.findall(r'^.*argument "name" for .*$', result.stdout, re.M)
    assert not refused, "\n".join(refused)


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


def _load_script(path):
    """A script of the repository (an example, a docs tool) imported as a module."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_example(*args, timeout=120, quiet=False):
    """The example's stdout; ``quiet``: its stderr has no NNabla INFO line either."""
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not quiet or "[nnabla][INFO]" not in result.stdout + result.stderr, result.stderr
    return result.stdout


@pytest.mark.slow
def test_migration_example():
    out = _run_example("examples/migration.py")
    assert "migration checks passed" in out


@pytest.mark.slow
def test_training_example_one_epoch(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("tqdm")
    pytest.importorskip("matplotlib")
    pytest.importorskip("nnabla_modules.checkpoint")  # model.save_parameters
    checkpoint = tmp_path / "digits.h5"
    out = _run_example(
        "examples/train_digits.py", "--epochs", "2", "--train-limit", "256",
        "--checkpoint", str(checkpoint), quiet=True,
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
@pytest.mark.slow
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


def test_training_example_warns_of_half_precision_on_the_cpu(capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("tqdm")
    example = _load_script(ROOT / "examples" / "train_digits.py")
    ctx = example.extension_context(example.parse_args(["--type-config", "half"]))
    assert ctx.backend[0] == "cpu:half"
    assert "half on the CPU runs 100-200x slower" in capsys.readouterr().err
    example.extension_context(example.parse_args([]))
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_training_example_refuses_zero_epochs_before_anything_runs(tmp_path):
    """--epochs 0 would train nothing, then load and report another run's checkpoint."""
    result = subprocess.run(
        [sys.executable, "examples/train_digits.py", "--epochs", "0",
         "--checkpoint", str(tmp_path / "x.h5")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --epochs: must be at least 1, not 0" in result.stderr
    assert result.stdout == "" and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_demo_example():
    _run_example("examples/demo.py")


# --- the Sphinx build and the built site ------------------------------------------------

check_pages = _load_script(DOCS / "check_pages.py")  # make docs-check


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory):
    """The HTML build of the docs (``make docs``), made once for the tests below."""
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    pytest.importorskip("furo")
    pytest.importorskip("sphinx_copybutton")
    out = tmp_path_factory.mktemp("docs")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    return out / "html"


@pytest.mark.slow
def test_docs_build_without_warnings(built_docs):
    assert (built_docs / "index.html").is_file()


def test_the_api_reference_shows_the_layers_signatures_and_shapes(built_docs):
    """Conv2d: its two signatures as Python writes them, and its Shape section."""
    import html

    page = (built_docs / "api.html").read_text(encoding="utf-8")
    start = page.index('id="nnabla_modules.layers.conv.Conv2d"')
    entry = page[start : page.index('id="nnabla_modules.layers.conv.Conv3d"')]
    text = html.unescape(re.sub(r"<[^>]+>", "", entry))
    assert "Conv2d(inmaps, outmaps, kernel, pad=None" in text
    assert "Conv2d(*, inmaps=None, outmaps, kernel, pad=None" in text
    assert "inmaps=None, outmaps" not in text.replace("*, inmaps=None, outmaps", "")
    assert '<p class="rubric">Shape</p>' in entry
    assert "Input inp: (*batch, inmaps, *spatial)" in re.sub(r"\s+", " ", text)


@pytest.mark.slow
def test_docs_links_images_and_anchors_resolve(built_docs):
    assert check_pages.check_links(built_docs) == []
    images = {p.name for p in (built_docs / "_images").iterdir()}
    assert {"module_tree.svg", "digits_training_curve.png"} <= images


class _Sidebar(check_pages.HTMLParser):
    """The page links of the navigation tree (furo's ``sidebar-tree``)."""

    def __init__(self):
        super().__init__()
        self.depth, self.links = 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self.depth or "sidebar-tree" in (attrs.get("class") or "").split():
            self.depth += 1
            if tag == "a" and "#" not in attrs.get("href", "#"):
                self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1


@pytest.mark.slow
def test_docs_navigation_lists_every_page_once(built_docs):
    sidebar = _Sidebar()
    sidebar.feed((built_docs / "index.html").read_text(encoding="utf-8"))
    pages = sorted(p.stem for p in DOCS.glob("*.md") if p.stem != "index")
    assert sorted(link.removesuffix(".html") for link in sidebar.links) == pages


@pytest.mark.slow
def test_docs_use_the_theme_and_the_copy_button(built_docs):
    html = (built_docs / "quickstart.html").read_text(encoding="utf-8")
    assert "furo" in html and "copybutton.js" in html


def _site(tmp_path, pages):
    """A small site; each page names an icon (else a browser asks for /favicon.ico)."""
    (tmp_path / "good.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" '
        'height="4"/></svg>'
    )
    for name, body in pages.items():
        head = f'<title>{name}</title><link rel="icon" href="good.svg">'
        (tmp_path / name).write_text(
            f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"
        )
    return tmp_path


def test_docs_check_finds_broken_links_without_a_browser(tmp_path):
    site = _site(tmp_path, {
        "index.html": '<a href="other.html#here">fine</a> <a href="other.html#gone">x</a>'
                      '<a href="missing.html">y</a> <img src="nothing.png">'
                      '<a href="https://example.org/x">elsewhere</a>',
        "other.html": '<h1 id="here">other</h1>',
    })  # fmt: skip
    assert check_pages.check_links(site) == [
        "index.html: link to a missing anchor: other.html#gone",
        "index.html: <a> refers to a missing file: missing.html",
        "index.html: <img> refers to a missing file: nothing.png",
    ]


@pytest.mark.skipif(check_pages.find_chromium() is None, reason="needs Chromium")
@pytest.mark.slow
def test_docs_check_in_chromium_finds_what_a_reader_would_see(tmp_path):
    (tmp_path / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    site = _site(tmp_path, {
        "index.html": '<img src="good.svg"><img src="damaged.png"><img src="absent.png">'
                      "<script>console.error('boom')</script>"
                      '<script>document.body.insertAdjacentHTML("beforeend",'
                      ' \'<a href="made-by-script.html">x</a>\')</script>',
        "clean.html": '<img src="good.svg"><a href="index.html">back</a>',
        "throws.html": "<script>undefinedFunction()</script>",
    })  # fmt: skip
    count, problems = check_pages.check_site(site, check_pages.find_chromium())
    assert count == 3
    text = "\n".join(problems)
    assert "index.html: console error: boom" in text
    assert "index.html: the server answered 404 for /absent.png" in text
    assert re.search(r"index.html: image does not render: \S+/damaged.png", text)
    assert "index.html: <a> refers to a missing file: made-by-script.html" in text
    assert re.search(r"throws.html: uncaught error: .*undefinedFunction", text)
    assert "clean.html" not in text and "good.svg" not in text


@pytest.mark.skipif(check_pages.find_chromium() is None, reason="needs Chromium")
@pytest.mark.slow
def test_docs_check_finds_tables_and_diagrams_cut_off_at_1280_px(tmp_path, built_docs):
    """At a laptop's width the built pages fit; a table or diagram wider than its column is cut."""
    wide = "<td><code>" + "x" * 150 + "</code></td>"
    site = _site(tmp_path, {
        "table.html": f'<article><div class="table-wrapper" style="width: 600px; overflow: auto">'
                      f"<table><tr>{wide}</tr></table></div></article>",
        "diagram.html": '<article><div class="highlight-text" style="width: 600px">'
                        f'<pre style="overflow: auto">{"─" * 150}</pre></div></article>',
        "fits.html": '<article><div class="highlight-text"><pre>short</pre></div></article>',
    })  # fmt: skip
    _, problems = check_pages.check_site(site, check_pages.find_chromium())
    assert [p.split(":")[0] for p in problems] == ["diagram.html", "table.html"], problems
    assert all("cut off at 1280 px" in p for p in problems)
    pages = ["architecture.html", "layers.html", "index.html"]
    count, problems = check_pages.check_site(built_docs, check_pages.find_chromium(), pages=pages)
    assert count == 3 and problems == []


@pytest.mark.slow
def test_docs_figures_are_up_to_date():
    """The diagram and the summary in docs/images are what the code gives today."""
    result = subprocess.run(
        [sys.executable, "docs/figures.py", "--check"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]


# --- every public name and argument in the API reference -----------------------------------


def _public_modules():
    return [nnabla_modules] + [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(nnabla_modules.__path__, "nnabla_modules.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]


def _public_objects():
    """``{qualified name: object}`` of the classes and functions the package declares public.

    Public is what an ``__all__`` lists: the package's and each public
    submodule's (``nnabla_modules.files``, ``nnabla_modules.cli``, ...).
    """
    found = {}
    for module in _public_modules():
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if inspect.isclass(value) or inspect.isfunction(value):
                found.setdefault(f"{value.__module__}.{value.__qualname__}", value)
    return found


@pytest.mark.slow
def test_api_reference_documents_every_public_class_and_function(built_docs):
    from sphinx.util.inventory import InventoryFile

    with open(built_docs / "objects.inv", "rb") as f:
        inventory = InventoryFile.load(f, "", lambda base, uri: uri)
    documented = set()
    for kind in ("py:class", "py:function", "py:exception"):
        for name in inventory.get(kind, {}):
            module_name, _, attribute = name.rpartition(".")
            try:
                documented.add(id(getattr(importlib.import_module(module_name), attribute)))
            except (ImportError, AttributeError):
                pass
    missing = [name for name, value in _public_objects().items() if id(value) not in documented]
    assert missing == [], f"not in docs/api.md: {missing}"


def _shown_signatures(cls):
    """The constructor's signatures as autodoc shows them (``autodoc_docstring_signature``).

    Lines ``Name(...)`` that start the docstring are its signatures; without
    them, ``inspect.signature``'s.
    """
    from sphinx.ext.autodoc import py_ext_sig_re

    shown = []
    for line in (inspect.getdoc(cls) or "").split("\n"):
        match = py_ext_sig_re.match(line)
        if not match or match.group(3) != cls.__name__:
            break
        shown.append(f"({match.group(5)})")
    return shown or [str(inspect.signature(cls))]


def test_the_api_reference_shows_constructor_signatures_that_are_python():
    """``Conv2d(inmaps=None, outmaps, kernel, ...)`` is no Python: its two forms are shown."""
    pytest.importorskip("sphinx")
    from nnabla_modules.layers._adapter import Layer

    classes = [
        value
        for value in _public_objects().values()
        if inspect.isclass(value) and value is not Layer and not issubclass(value, Exception)
    ]
    for cls in classes:
        for signature in _shown_signatures(cls):
            try:
                ast.parse(f"def {cls.__name__}{signature}: pass")
            except SyntaxError as error:
                pytest.fail(f"{cls.__name__}{signature}: {error}")
    conv = _shown_signatures(nnabla_modules.Conv2d)
    assert [s.split(", pad")[0] for s in conv] == [
        "(inmaps, outmaps, kernel",
        "(*, inmaps=None, outmaps, kernel",
    ]
    assert conv[0].endswith(", *, channel_last=False, apply_w=None, apply_b=None, name=None)")
    assert _shown_signatures(nnabla_modules.Linear)[1].startswith("(*, n_inmaps=None, n_outmaps")


def _callables(value):
    """``(name, function, docstring its arguments belong in)`` for a public callable."""
    if inspect.isfunction(value):
        yield value.__qualname__, value, inspect.getdoc(value)
        return
    class_doc = inspect.getdoc(value) or ""
    for name, member in vars(value).items():
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if not inspect.isfunction(member) or name == "pf_function":  # PF's own function
            continue
        if name == "__init__":  # the class docstring documents the constructor
            yield value.__qualname__, member, class_doc
        elif name == "__call__" or not name.startswith("_"):
            yield f"{value.__qualname__}.{name}", member, inspect.getdoc(member)


def _undocumented_arguments():
    """``module.function(argument)`` for each argument its docstring does not name."""
    gaps = set()
    for value in _public_objects().values():
        for name, function, doc in _callables(value):
            if not doc:
                gaps.add(f"{value.__module__}.{name}: no docstring")
                continue
            for argument in inspect.signature(function).parameters:
                if argument not in ("self", "cls") and not re.search(rf"\b{argument}\b", doc):
                    gaps.add(f"{value.__module__}.{name}({argument})")
    return gaps


# Arguments whose docstrings do not name them yet. The set may only shrink: a
# new public function or argument must be documented where it is defined.
KNOWN_GAPS = {
    "nnabla_modules.layers._adapter.Layer(args)",
    "nnabla_modules.layers._adapter.Layer(kwargs)",
    "nnabla_modules.layers._adapter.Layer.__call__(inputs)",
    "nnabla_modules.layers._adapter.Layer.__call__(overrides)",
    "nnabla_modules.layers._adapter.Layer.__call__(test)",
    "nnabla_modules.layers.normalization.BatchNormalization.__call__(inp)",
    "nnabla_modules.layers.normalization.BatchNormalization.__call__(overrides)",
    "nnabla_modules.layers.normalization.SyncBatchNormalization.__call__(inp)",
    "nnabla_modules.layers.normalization.SyncBatchNormalization.__call__(overrides)",
    "nnabla_modules.layers.normalization.SyncBatchNormalization.__call__(test)",
    "nnabla_modules.module.Module.__call__(args)",
    "nnabla_modules.module.Module.__call__(kwargs)",
    "nnabla_modules.summary.Summary(total)",
    "nnabla_modules.testing.NetworkComparison(what)",
    "nnabla_modules.testing.NetworkComparison.add: no docstring",
}


def test_every_argument_of_the_public_api_is_documented():
    new_gaps = sorted(_undocumented_arguments() - KNOWN_GAPS)
    assert new_gaps == [], "arguments missing from their docstrings' Args sections: " + ", ".join(
        new_gaps
    )
