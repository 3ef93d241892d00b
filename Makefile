# Two commands do all set-up on a fresh machine: `make serve` and `make test`.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
EXTRAS  ?= onnx,rerank,test,train,postgres
# llama.cpp (the optional generative reader) is compiled for a fixed, portable x86-64 level:
# AVX2/FMA/F16C and nothing newer. A native build (-march=native) made on one CPU segfaults
# on another (AVX-512/AMX Intel), and pip caches built wheels by version, not by flags, so
# the wheel lives in a folder keyed by version and flags and is installed from there only.
LLAMA_VERSION := 0.3.36
LLAMA_FLAGS   := -DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=OFF -DGGML_BACKEND_DL=OFF \
                 -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=OFF \
                 -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF \
                 -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF \
                 -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_KEY     := $(shell echo '$(LLAMA_VERSION) $(LLAMA_FLAGS)' | sha256sum | cut -c1-12)
WHEELS        ?= $(HOME)/.cache/rag/wheels/llama-$(LLAMA_VERSION)-$(LLAMA_KEY)
GEN_STAMP     := $(VENV)/.gen-$(LLAMA_KEY)
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1

.PHONY: install gen serve index test lint check eval bench clean

$(BIN)/python:
	@command -v $(PY) >/dev/null || (echo "need $(PY) (Python 3.11) on PATH" >&2; exit 1)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes. torch==2.13.0 is the CPU wheel on local disk.
# The default (extractive) reader needs nothing compiled, so `make serve` never waits for
# llama.cpp; `make gen` (and `make test`) add the generative reader.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

# Compiled once per machine and flag set (~6 min on 2 cores) into $(WHEELS), then installed
# from there with --force-reinstall so an earlier native build in the venv is replaced.
$(GEN_STAMP): $(STAMP)
	@if ! ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1; then \
	  echo "building llama-cpp-python $(LLAMA_VERSION) portable (AVX2/FMA/F16C) into $(WHEELS) ..." >&2; \
	  rm -rf $(WHEELS).part && mkdir -p $(WHEELS).part && \
	  CMAKE_ARGS="$(LLAMA_FLAGS)" $(BIN)/pip wheel --quiet --no-cache-dir --no-deps \
	    -w $(WHEELS).part llama-cpp-python==$(LLAMA_VERSION) && mv $(WHEELS).part $(WHEELS); fi
	$(BIN)/pip install --quiet --no-deps --no-index --force-reinstall $(WHEELS)/llama_cpp_python-*.whl
	$(BIN)/pip install --quiet -e ".[gen]" --find-links $(WHEELS)
	rm -f $(VENV)/.gen-*
	touch $(GEN_STAMP)

gen: $(GEN_STAMP)

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

test: gen
	bash tests/setup_browser.sh
	$(BIN)/ruff check rag api eval tests
	$(BIN)/mypy rag api
	$(BIN)/python -m pytest -q

check: test

eval: index
	$(BIN)/rag eval --out eval/out

bench: gen
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/rag bench --out eval/bench

clean:
	rm -rf $(VENV) index/*.sqlite* index/dense-* index/bm25-* index/manifest.json index/.lock
