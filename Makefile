# The two commands of the README: `make demo` (the main job) and `make test`.
# Each target first runs scripts/venv.sh with the extras of setup.cfg its
# command needs: it creates the Python 3.10 virtualenv in .venv on first use and
# installs what is missing, quietly; extras add up, nothing is reinstalled when
# you switch targets, and an up-to-date .venv costs a fraction of a second.
PY := .venv/bin/python
VENV := scripts/venv.sh

.PHONY: demo test test-fast lint bench docs docs-check docs-figures venv clean

# Everything for development: the tests, the examples, the docs.
venv:
	@$(VENV) test,examples,docs

demo:
	@$(VENV) examples
	$(PY) examples/train_digits.py

# The whole suite: it also runs the examples and builds the docs.
test:
	@$(VENV) test,examples,docs
	$(PY) -m pytest

# The edit-test loop: the suite without the tests marked slow (pyproject.toml).
test-fast:
	@$(VENV) test
	$(PY) -m pytest -m "not slow"

# ruff, then mypy over the package (its layer stubs) and tests/typing/accepted.py:
# pyproject.toml's [tool.mypy] says what it checks.
lint:
	@$(VENV) test
	$(PY) -m ruff check nnabla_modules tests benchmarks examples scripts
	$(PY) -m mypy

bench:
	@$(VENV) bench
	$(PY) -m benchmarks

docs:
	@$(VENV) docs
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

# Every page of a fresh build rendered in headless Chromium (Debian: apt-get
# install chromium): fails on a missing image or file, a broken internal link
# or anchor, a console error. docs/check_pages.py says how.
docs-check:
	@$(VENV) docs
	rm -rf docs/_build/check
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/check
	$(PY) docs/check_pages.py docs/_build/check

# The docs' generated pictures: the demo's training curve (from `make demo`),
# the module-tree diagram and the example's summary (docs/figures.py).
docs-figures: demo
	@$(VENV) examples,docs
	cp examples/checkpoints/digits_resnet_curve.png docs/images/digits_training_curve.png
	$(PY) docs/figures.py

clean:
	rm -rf .venv build docs/_build .pytest_cache
