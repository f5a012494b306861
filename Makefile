# Two entry points: `make repro` (the whole pipeline) and `make test` (the test suite).
# Each first brings .venv in line with requirements.lock; that step is a no-op when nothing changed.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
# DVC must not phone home or write outside the repo.
export DVC_NO_ANALYTICS := 1

.PHONY: venv js repro test fuzz bench lock clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	# Bytecode compiled up front: with PYTHONDONTWRITEBYTECODE set, every stage would otherwise
	# recompile scipy, statsmodels and matplotlib on import.
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/uv pip sync --quiet --compile-bytecode requirements.lock
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/uv pip install --quiet --no-deps -e .
	touch $(STAMP)

# vega, vega-lite and vega-embed for the offline `dvc plots show` page (.dvc/plots/page.html), as
# package-lock.json pins them; without npm only that page's charts are missing, so this warns, not fails.
JS_STAMP := node_modules/.installed

js: $(JS_STAMP)

$(JS_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: dvc_plots/index.html will show no charts (install Node.js, then make js)"; exit 0; }; \
		npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error && touch $(JS_STAMP)

repro: venv js
	dvc repro

# The formatter and linter first (pyproject.toml [tool.ruff]): a file they would change fails the run.
test: venv js
	ruff format --check .
	ruff check .
	python -m pytest -q

# The generated-input properties (tests/test_fuzz.py) at full size: FUZZ_EXAMPLES cases per property.
FUZZ_EXAMPLES ?= 10000

fuzz: venv
	STOCKCAST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) python -m pytest -q tests/test_fuzz.py

# The benchmarks compare with statsforecast, a benchmark-only extra: its lock is requirements.lock
# plus the extra (same pins), installed over the synced venv; `make venv` syncs it away again.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) requirements-bench.lock
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/uv pip install --quiet -r requirements-bench.lock
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	python -m benchmarks

# Regenerate the lock after editing pyproject.toml dependencies.
lock: venv
	uv pip compile pyproject.toml --extra test --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --no-header --quiet -o requirements.lock
	uv pip compile pyproject.toml --extra test --extra bench -c requirements.lock --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --no-header --quiet -o requirements-bench.lock

clean:
	rm -rf $(VENV)
