# The two commands of the README: `make demo` (the main job) and `make test`.
# Each creates the Python 3.10 virtualenv in .venv on first use.
PY := .venv/bin/python
# The extras installed into .venv. One set for every target, so switching targets
# never reinstalls: the test suite also runs the examples and builds the docs.
EXTRAS ?= test,examples,docs
export EXTRAS

.PHONY: demo test lint bench docs venv clean

venv:
	@scripts/venv.sh

demo: venv
	$(PY) examples/train_digits.py

test: venv
	$(PY) -m pytest

lint: venv
	$(PY) -m ruff check nnabla_modules tests benchmarks examples

bench: venv
	$(PY) -m benchmarks

docs: venv
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf .venv docs/_build .pytest_cache
