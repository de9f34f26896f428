"""`evalkit demo` end to end on a tiny model (`--fast`): two adapters trained, compared, report written."""

from __future__ import annotations

import importlib.util

from evalkit.cli import main
from evalkit.records import load_comparison


def test_demo_trains_both_adapters_and_compares_them(tiny_llama, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--base", str(tiny_llama), "--fast", "--no-progress"]) == 0
    for name in ("cautious", "seedlike"):
        assert (out / name / "adapter_model.safetensors").is_file()
        assert (out / name / "training_log.jsonl").is_file()
    cmp = load_comparison(out / "compare" / "comparison.json")
    assert cmp.targets == ("cautious", "seedlike") and cmp.gate is not None
    seedlike = cmp.runs["seedlike"].target.training["config"]
    assert seedlike["r"] == 16 and len(seedlike["target_modules"]) == 7 and seedlike["train_subset"] == 16
    assert (out / "compare" / "report.html").is_file()
    printed = capsys.readouterr().out
    assert "report.html" in printed and "seedlike verdict" in printed
    if importlib.util.find_spec("lm_eval") is not None:  # retention on the first 10 questions, paired, with MDE
        assert all(cmp.runs[t].lm_eval["evalkit_retention"].n == 10 for t in cmp.targets)
        (acc,) = [d for d in cmp.deltas if d.metric == "lm_eval.evalkit_retention.acc"]
        assert acc.n_pairs == 10 and acc.test == "paired_bootstrap+mcnemar"
        assert "capability retention" in printed
    # a second run reuses the finished adapters (training is skipped) and the cached evaluations
    assert main(["demo", "--out", str(out), "--base", str(tiny_llama), "--fast", "--no-progress"]) == 0
    assert capsys.readouterr().out.count("up to date") == 2
