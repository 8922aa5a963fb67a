"""The package as the README installs it: type checkers see it, each make target installs its part.

``scripts/venv.sh`` (what every ``make`` target runs first) installs the
package in setuptools' strict editable mode, whose plain ``.pth`` entry type
checkers and editors follow; the default editable mode's import hook hides the
package from them.
"""

import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"

SCRIPT = """\
import nnabla_modules as nm

net = nm.Sequential(nm.Conv2d(1, 8, 3, pad=1), nm.ReLU(), nm.MaxPool2d(2), name="net")
reveal_type(nm.Conv2d(1, 8, 3))
reveal_type(net)
nm.Dropout(p="high")
"""


def _installed():
    try:
        importlib.metadata.distribution("nnabla-modules")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _installed(), reason="nnabla-modules is not installed here")
def test_a_type_checker_outside_the_repository_resolves_the_installed_package(tmp_path):
    pytest.importorskip("mypy")
    (tmp_path / "train.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "train.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = done.stdout
    assert "Cannot find implementation or library stub" not in out, out
    assert 'train.py:4: note: Revealed type is "nnabla_modules.layers.conv.Conv2d"' in out, out
    assert 'Revealed type is "nnabla_modules.containers.Sequential"' in out, out
    assert 'train.py:6: error: Argument "p" to "Dropout" has incompatible type "str"' in out, out
    assert out.rstrip().endswith("Found 1 error in 1 file (checked 1 source file)"), out


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_each_make_target_installs_what_its_command_needs():
    def venv_call(target):
        done = subprocess.run(
            ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True
        )
        calls = [line.split() for line in done.stdout.splitlines() if "scripts/venv.sh" in line]
        assert len(calls) == 1, done.stdout
        return calls[0][1].split(",")

    assert venv_call("demo") == ["examples"]  # no Sphinx, mypy, ruff, pytest
    assert venv_call("test") == ["test", "examples", "docs"]  # the suite runs both
    assert venv_call("test-fast") == ["test"]
    assert venv_call("lint") == ["test"]
    assert venv_call("docs") == ["docs"]
    requires = importlib.metadata.requires("nnabla-modules") if _installed() else None
    if requires is not None:
        examples = [r for r in requires if 'extra == "examples"' in r]
        assert examples and not any(t in r for r in examples for t in ("sphinx", "mypy", "ruff"))


@pytest.mark.skipif(
    not (VENV / ".installed").exists() or Path(sys.prefix).resolve() != VENV.resolve(),
    reason="runs in the .venv that scripts/venv.sh made",
)
def test_an_up_to_date_venv_installs_nothing_and_prints_nothing():
    start = time.monotonic()
    done = subprocess.run(
        ["scripts/venv.sh", "test"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr
    assert time.monotonic() - start < 10  # no pip: a cksum and a metadata read


def test_the_readme_sets_up_with_make_and_installs_in_strict_editable_mode():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in first.splitlines()] == ["make demo", "make test"]
    pages = [readme, (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")]
    installs = [line for page in pages for line in page.splitlines()
                if line.startswith("pip install -e")]  # fmt: skip
    assert len(installs) >= 8
    assert all("--config-settings editable_mode=strict" in line for line in installs), installs
    assert "editable_mode=strict" in (ROOT / "scripts" / "venv.sh").read_text()
