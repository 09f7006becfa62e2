# Two entry points for a fresh machine: `make demo` runs the default job, `make test` runs the tests.
# Both create (or reuse) .venv and install what they need.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

.PHONY: demo test bench
demo: $(STAMP)
	$(VENV)/bin/gristmill run recipes/default.yaml

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_pipeline.py
