# omw-sites — two commands do all set-up: `make demo` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PARCELS ?= 20000
SEED    ?= 42
SERVE   ?= 1
HOST    ?= 127.0.0.1
PORT    ?= 8000
RAW     := data/raw/demo
OUT     := data/processed

.PHONY: demo test venv dev lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# reinstall only when the package's metadata changed; Python sources are installed editable
BUILD_INPUTS := pyproject.toml

$(VENV)/.installed: $(BUILD_INPUTS) | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(BUILD_INPUTS) | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	touch $@ $(VENV)/.installed

venv: $(VENV)/.installed

dev: $(VENV)/.installed-dev

demo: venv
	$(BIN)/omw-sites demo build --parcels $(PARCELS) --seed $(SEED) --out $(RAW)
	$(BIN)/omw-sites run --raw $(RAW) --out $(OUT)
	$(BIN)/omw-sites map --all --store $(OUT)/omw_sites.gpkg --out $(OUT)/maps
ifeq ($(SERVE),1)
	$(BIN)/omw-sites serve --store $(OUT)/omw_sites.gpkg --host $(HOST) --port $(PORT)
endif

test: dev
	$(BIN)/python -m pytest -q

lint: dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src/omw_sites

bench: venv
	$(BIN)/python benchmarks/pipeline.py

clean:
	rm -rf $(RAW) $(OUT)/*.gpkg $(OUT)/maps
