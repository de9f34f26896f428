"""Data parallel (torchrun, gloo, CPU): 2 processes give results.json identical to 1 process, byte for byte,
once the volatile provenance (date, host, command line) is set aside; each shard is resumable via the cache."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(launcher: list[str], args: list[str], cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVALKIT_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}  # the same arithmetic in every process
    return subprocess.run([sys.executable, *launcher, "-m", "evalkit", *args], env=env, capture_output=True,
                          text=True, timeout=600)


def _stable(path: Path) -> str:
    rec = json.loads(path.read_text(encoding="utf-8"))
    rec.pop("provenance")  # created_at, host, command line: volatile by nature
    if rec.get("audit"):
        rec["audit"].pop("runtime_s", None)  # wall time of the data audit
    return json.dumps(rec, sort_keys=True, ensure_ascii=False)


def test_two_processes_equal_one_process(tiny_llama, mini_data, tmp_path):
    args = ["eval", "base", "--base", str(tiny_llama), "--suite", str(mini_data["suite_en"]),
            "--suite", str(mini_data["suite_ko"]), "--train-data", str(mini_data["train"]),
            "--val-data", str(mini_data["val"]), "--max-new-tokens", "8", "--batch-size", "2",
            "--train-sample", "8", "--extraction-n", "3", "--device", "cpu"]
    one = _run([], [*args, "--out", str(tmp_path / "one")], tmp_path / "cache1")
    assert one.returncode == 0, one.stderr[-2000:]
    torchrun = ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(_free_port())]
    two = _run(torchrun, [*args, "--out", str(tmp_path / "two")], tmp_path / "cache2")
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("wrote ") == 1  # only rank 0 writes and prints
    assert _stable(tmp_path / "one" / "results.json") == _stable(tmp_path / "two" / "results.json")
    engine = json.loads((tmp_path / "one" / "results.json").read_text(encoding="utf-8"))["engine"]
    assert engine["name"] == "hf" and "transformers" in engine["version"]

    # resumable: a rerun of the sharded job finds every shard in the cache and writes (computes) nothing
    def written():
        with sqlite3.connect(tmp_path / "cache2" / "runs" / "cache.sqlite") as db:
            return db.execute("SELECT COUNT(*), MAX(created) FROM entries").fetchone()

    before = written()
    again = _run(torchrun[:-1] + [str(_free_port())], [*args, "--out", str(tmp_path / "three")], tmp_path / "cache2")
    assert again.returncode == 0, again.stderr[-2000:]
    assert written() == before and before[0] > 0
    assert _stable(tmp_path / "three" / "results.json") == _stable(tmp_path / "one" / "results.json")
