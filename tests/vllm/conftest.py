"""vLLM tests run in their own environment (.venv-vllm, `make test-vllm`); elsewhere they are skipped with
that reason printed in pytest's summary."""

from __future__ import annotations

import importlib.util
import os

import pytest

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache per engine: 2 cores, 24 GB shared

REASON = "vLLM is not installed in this environment; these tests run in .venv-vllm through `make test-vllm`"


def pytest_collection_modifyitems(config, items):
    if importlib.util.find_spec("vllm") is not None:
        return
    for item in items:
        if "tests/vllm/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.skip(reason=REASON))
