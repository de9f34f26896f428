"""kill -9 at several points of eval, compare and train; the rerun gives the uninterrupted run's record.

A killed run leaves no output behind (outputs are renamed into place whole, evalkit/outputs.py);
its finished batches are in the cache, so the rerun computes only the rest.
"""

from __future__ import annotations

import json

import pytest

from evalkit.cli import main

from .conftest import FAST, cache_entries, cli_env, kill_when, stable, start_cli


@pytest.fixture(scope="module")
def reference(adapter, data_args, tmp_path_factory):
    """Uninterrupted eval and compare runs, each on its own fresh cache; and their cache sizes."""
    root = tmp_path_factory.mktemp("reference")
    out = {}
    for name, argv in (("eval", ["eval", str(adapter)]), ("compare", ["compare", "base", str(adapter), "--no-gate"])):
        cache = root / f"cache-{name}"
        assert main([*argv, "--out", str(root / name), "--cache-dir", str(cache), *data_args, *FAST]) == 0
        out[name] = (root / name, cache_entries(cache / "cache.sqlite"))
    return out


# kill points: after the first stored batch (mid-generation of the first target), and past the middle
@pytest.mark.parametrize("cmd, fraction", [("eval", 0.0), ("compare", 0.0), ("compare", 0.5)])
def test_killed_run_resumes_to_the_same_record(cmd, fraction, adapter, data_args, reference, tmp_path, capsys):
    ref_out, total = reference[cmd]
    argv = ["eval", str(adapter)] if cmd == "eval" else ["compare", "base", str(adapter), "--no-gate"]
    cache, out = tmp_path / "cache", tmp_path / "out"
    full = [*argv, "--out", str(out), "--cache-dir", str(cache), *data_args, *FAST]
    at = max(1, int(total * fraction))
    kill_when(start_cli(full, cli_env(tmp_path / "ek")), lambda: cache_entries(cache / "cache.sqlite") >= at)
    assert not out.exists()  # nothing half-written
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder either
    assert main(full) == 0
    record = "results.json" if cmd == "eval" else "comparison.json"
    assert stable(out / record) == stable(ref_out / record)
    err = capsys.readouterr().err
    reused = int(err.split("cache: ")[1].split(" results reused")[0])
    assert reused >= at  # the batches finished before the kill are not computed again


def test_killed_training_leaves_nothing_and_the_rerun_trains_the_same_adapter(tiny_llama, mini_data, tmp_path):
    common = ["--set", f"base={tiny_llama}", "--set", f"train_data={mini_data['train']}",
              "--set", f"val_data={mini_data['val']}", "--set", "max_steps=6", "--set", "eval_steps=1",
              "--set", "batch_size=4", "--set", "max_length=128", "--set", "lora_dropout=0.0", "--no-progress"]
    out = tmp_path / "adapter"

    def training_started() -> bool:  # a loss row logged in the temporary folder: mid-training
        temps = list(tmp_path.glob(".adapter.tmp-*/training_log.jsonl"))
        return bool(temps) and temps[0].read_text().count("\n") >= 1

    kill_when(start_cli(["train", "--out", str(out), *common], cli_env(tmp_path / "ek")), training_started)
    assert not out.exists()
    assert main(["train", "--out", str(out), *common]) == 0  # also removes the dead run's temporary folder
    assert not list(tmp_path.glob(".adapter.tmp-*"))
    assert main(["train", "--out", str(tmp_path / "uninterrupted"), *common]) == 0
    a = json.loads((out / "evalkit.json").read_text())
    b = json.loads((tmp_path / "uninterrupted" / "evalkit.json").read_text())
    assert a["adapter_sha256"] == b["adapter_sha256"]  # bit-identical weights
    assert (out / "training_log.jsonl").read_text() == (tmp_path / "uninterrupted" / "training_log.jsonl").read_text()
