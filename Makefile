# Two commands do all set-up on a fresh machine: `make serve` and `make test`.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
EXTRAS  ?= gen,onnx,test
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1

.PHONY: install serve index test lint check eval bench clean

$(BIN)/python:
	@command -v $(PY) >/dev/null || (echo "need $(PY) (Python 3.11) on PATH" >&2; exit 1)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes. torch==2.13.0 is the CPU wheel on local disk;
# llama-cpp-python compiles once per machine (~6 min on 2 cores), then pip reuses its wheel.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

# Build index/ from seeds/ if it is missing; otherwise bring the seeds up to date without
# dropping articles added since (`rag add` skips unchanged files and loads no model then).
index: install
	@if [ -f index/store.sqlite ]; then $(BIN)/rag add seeds; \
	else $(BIN)/rag index build --from seeds; fi

serve: index
	$(BIN)/rag serve

lint: install
	$(BIN)/ruff check rag api eval tests
	$(BIN)/mypy rag api

test: install
	bash tests/setup_browser.sh
	$(BIN)/ruff check rag api eval tests
	$(BIN)/mypy rag api
	$(BIN)/python -m pytest -q

check: test

eval: index
	$(BIN)/rag eval --out eval/out

bench: install
	$(BIN)/rag bench --out eval/bench

clean:
	rm -rf $(VENV) index/*.sqlite* index/dense-* index/bm25-* index/manifest.json index/.lock
