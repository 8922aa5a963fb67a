# The two commands of the README: `make demo` (the main job) and `make test`.
# Each creates the Python 3.10 virtualenv in .venv on first use.
PY := .venv/bin/python
# The extras installed into .venv. One set for every target, so switching targets
# never reinstalls: the test suite also runs the examples and builds the docs.
EXTRAS ?= test,examples,docs
export EXTRAS

.PHONY: demo test lint bench docs docs-check docs-figures venv clean

venv:
	@scripts/venv.sh

demo: venv
	$(PY) examples/train_digits.py

test: venv
	$(PY) -m pytest

# ruff, then mypy over the package (its layer stubs) and tests/typing/accepted.py:
# pyproject.toml's [tool.mypy] says what it checks.
lint: venv
	$(PY) -m ruff check nnabla_modules tests benchmarks examples scripts
	$(PY) -m mypy

bench: venv
	$(PY) -m benchmarks

docs: venv
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

# Every page of a fresh build rendered in headless Chromium (Debian: apt-get
# install chromium): fails on a missing image or file, a broken internal link
# or anchor, a console error. docs/check_pages.py says how.
docs-check: venv
	rm -rf docs/_build/check
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/check
	$(PY) docs/check_pages.py docs/_build/check

# The docs' generated pictures: the demo's training curve (from `make demo`),
# the module-tree diagram and the example's summary (docs/figures.py).
docs-figures: demo
	cp examples/checkpoints/digits_resnet_curve.png docs/images/digits_training_curve.png
	$(PY) docs/figures.py

clean:
	rm -rf .venv docs/_build .pytest_cache
