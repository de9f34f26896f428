"""Fault-injection fixtures: one tiny trained adapter, and the CLI run in a subprocess that can be killed.

Everything runs on the tiny random-init Llama of tests/conftest.py with a few prompts, so the whole
fault suite stays well under two minutes on two cores.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import pytest

from tests.conftest import REPO

# small batches: many cache writes, so a kill can land between any two of them
FAST = ["--max-new-tokens", "8", "--limit", "2", "--extraction-n", "2", "--batch-size", "2", "--max-length", "256",
        "--no-progress"]
VOLATILE = ("provenance",)  # created_at, command, host, versions: what differs between two identical runs


@pytest.fixture(scope="package")
def adapter(tiny_llama, mini_data, tmp_path_factory) -> Path:
    from evalkit.config import TrainConfig
    from evalkit.runtime.train import train

    out = tmp_path_factory.mktemp("faults") / "light"
    cfg = TrainConfig(base=str(tiny_llama), train_data=str(mini_data["train"]), val_data=str(mini_data["val"]),
                      target_modules=["q_proj", "v_proj"], r=4, lora_alpha=8, learning_rate=1e-3, max_steps=2,
                      eval_steps=2, batch_size=8, max_length=128, seed=0, lora_dropout=0.0)
    train(cfg, out, progress=False, console=lambda *_: None)
    return out


@pytest.fixture(scope="package")
def data_args(mini_data) -> list[str]:
    return ["--suite", str(mini_data["suite_en"]), "--suite", str(mini_data["suite_ko"]),
            "--train-data", str(mini_data["train"]), "--val-data", str(mini_data["val"])]


def stable(path: Path) -> dict:
    """A record without its volatile fields (at any depth)."""
    def drop(obj):
        if isinstance(obj, dict):
            return {k: drop(v) for k, v in obj.items() if k not in VOLATILE}
        if isinstance(obj, list):
            return [drop(v) for v in obj]
        return obj

    return drop(json.loads(Path(path).read_text(encoding="utf-8")))


def cli_env(cache: Path, **extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "EVALKIT_CACHE": str(cache),
            "OMP_WAIT_POLICY": "PASSIVE", "TOKENIZERS_PARALLELISM": "false", **extra}


def start_cli(argv: list[str], env: dict, preexec: Optional[Callable[[], None]] = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "evalkit", *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=preexec)


def _is_result(value: str) -> bool:
    """A generation (a list of {"text", ...}) or a score ({"nll", "logprobs", ...}) entry: what a run's
    "N results reused" counts. The cache also keeps chat-template info and token counts, which it does not."""
    v = json.loads(value)
    return (isinstance(v, list) and all(isinstance(g, dict) and "text" in g for g in v)) or \
        (isinstance(v, dict) and "logprobs" in v)


def cache_entries(cache_file: Path) -> int:
    """Result entries (generations and scores) in the cache file; 0 while it does not exist or is locked."""
    if not cache_file.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{cache_file}?mode=ro", uri=True, timeout=5) as conn:
            return sum(_is_result(v) for (v,) in conn.execute("SELECT value FROM entries"))
    except sqlite3.Error:
        return 0


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 300.0) -> None:
    """SIGKILL ``proc`` as soon as ``ready()``; fails if it finished (or timed out) first."""
    t0 = time.monotonic()
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"finished (rc {proc.returncode}) before the kill point; stderr: {err[-2000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("kill point not reached in time")
        time.sleep(0.02)
    proc.kill()
    proc.communicate()
    assert proc.returncode == -9
