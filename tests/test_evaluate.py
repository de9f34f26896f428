"""End to end on tiny random-init models: train -> eval / compare / score -> records, exit codes."""

from __future__ import annotations

import json

import pytest

from evalkit.cli import main
from evalkit.config import TrainConfig
from evalkit.runtime.engine import Engine
from evalkit.evaluate import EvalSettings, evaluate_target
from evalkit.records import load_comparison, load_run
from evalkit.runtime.train import train

from .conftest import write_jsonl

FAST = EvalSettings(max_new_tokens=12, batch_size=16, train_sample=16, extraction_n=4, n_boot=100)
FAST_ARGS = ["--max-new-tokens", "12", "--train-sample", "16", "--extraction-n", "4"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def adapters(tiny_llama, mini_data, tmp_path_factory):
    """A lightly trained adapter and one trained hard on 16 conversations (memorizes them)."""
    root = tmp_path_factory.mktemp("adapters")
    common = dict(base=str(tiny_llama), train_data=str(mini_data["train"]), val_data=str(mini_data["val"]),
                  batch_size=8, max_length=256, seed=0, lora_dropout=0.0)
    light = TrainConfig(target_modules=["q_proj", "v_proj"], r=4, lora_alpha=8, learning_rate=1e-3, max_steps=2,
                        eval_steps=2, **common)
    heavy = TrainConfig(target_modules="all-linear", r=16, lora_alpha=32, learning_rate=1e-2, train_subset=16,
                        num_epochs=40, eval_steps=20, **common)
    train(light, root / "light", progress=False, console=lambda *_: None)
    train(heavy, root / "heavy", progress=False, console=lambda *_: None)
    return {"light": root / "light", "heavy": root / "heavy"}


def _eval(engine, target, mini_data, **kw):
    return evaluate_target(engine, target, suites=[mini_data["suite_en"], mini_data["suite_ko"]],
                           train_data=mini_data["train"], val_data=mini_data["val"], settings=FAST, **kw)


def test_memorizing_adapter_is_caught_and_base_is_the_null(adapters, tiny_llama, mini_data, tmp_path):
    engine = Engine(str(tiny_llama), cache=False)
    base = _eval(engine, "base", mini_data)
    heavy = _eval(engine, adapters["heavy"], mini_data)
    # members = the 16 conversations the heavy adapter saw (evalkit.json used_ids); non-members = val
    assert heavy.settings["n_members"] == 16 and heavy.settings["n_nonmembers"] == 8
    assert heavy.summary["train_loss"] < heavy.summary["val_loss"] - 0.5
    assert heavy.summary["loss_gap"] > 0.5
    assert heavy.summary["mia_auc"] >= 0.95  # base-calibrated score separates the 16 members perfectly
    assert heavy.verdict.level == "overfit"
    assert any(r.code == "loss_gap" for r in heavy.verdict.reasons)
    # the base model never saw the data: its member/non-member scores are exchangeable
    assert abs(base.summary["mia_auc_loss"] - 0.5) < 0.25
    # for the base the headline is its LOSS score, not the ref score (NLL_base - NLL_base = 0 for everyone)
    assert base.summary["mia_auc"] == base.summary["mia_auc_loss"] == base.summary["mia_auc_base_null"]
    assert "mia_auc_ref" not in base.summary and "mia_auc_ezmia" not in base.summary
    assert abs(base.summary["loss_gap"]) < 0.2
    # beside the adapter's MIA: the same score with the base alone on the same examples, and the blind baseline
    for null in ("mia_auc_base_null", "mia_auc_blind"):
        lo, hi = heavy.intervals[null]
        assert lo < heavy.summary[null] < hi and heavy.n[null] == 8
    assert heavy.n["mia_auc"] == 8 and heavy.n["loss_gap_val"] == 8
    assert heavy.summary["mia_auc_ezmia"] > 0.5
    # MIA on 8 per class is below the 30 it needs: reported, not judged (docs/verdict.md); the overfit is the gap's
    (mia,) = [r for r in heavy.verdict.reasons if r.code == "mia_auc"]
    assert (mia.level, mia.status, mia.n) == ("warn", "not_enough_data", 8)
    from evalkit.verdict import rejudge

    assert rejudge(heavy).verdict == heavy.verdict and rejudge(base).verdict == base.verdict  # the n is judged


def test_results_json_holds_every_figure(adapters, tiny_llama, mini_data, tmp_path):
    out = tmp_path / "ev"
    assert main(["eval", str(adapters["light"]), "--out", str(out), "--base", str(tiny_llama),
                 "--suite", str(mini_data["suite_en"]), "--suite", str(mini_data["suite_ko"]),
                 "--train-data", str(mini_data["train"]), "--val-data", str(mini_data["val"]), *FAST_ARGS]) == 0
    raw = json.loads((out / "results.json").read_text("utf-8"))
    assert raw["schema_version"] == 2 and raw["kind"] == "eval" and raw["target"]["name"] == "light"
    for key in ("train_loss", "val_loss", "heldout_loss", "loss_gap", "train_ppl", "rougeL", "rougeLsum",
                "novelty_4", "reference_novelty_4", "distinct_1", "distinct_2", "mode_collapse_rate",
                "verbatim_rate", "near_verbatim_rate", "extraction_rate", "heldout_extraction_rate", "mia_auc",
                "mia_tpr_at_0fp", "mia_auc_zlib", "mia_auc_ezmia", "mia_auc_base_null", "mia_auc_blind",
                "loss_gap_val", "loss_gap_heldout", "loss_gap_calibrated", "extraction_gap", "rougeL@eco_heldout_ko",
                "novelty_gap_4@eco_heldout_en", "min_val_loss_step", "truncated_rate"):
        assert key in raw["summary"], key
    # every figure with an interval has its n; 8 non-members cannot bound a 1% FPR
    assert set(raw["intervals"]) <= set(raw["n"]) and "mia_tpr_at_1fpr" not in raw["summary"]
    assert raw["n"]["mia_auc"] == 8 and raw["settings"]["eval"]["max_length"] == 256  # the adapter's own
    assert "mia_auc_minkpp" in raw["settings"]["not_measured"]
    assert len(raw["samples"]) == 12  # 8 English + 4 Korean prompts
    s = raw["samples"][0]
    assert {"id", "prompt", "prediction", "reference", "metrics", "flags", "memorization", "n_tokens",
            "hit_max_tokens"} <= set(s)
    assert "rougeL" in s["metrics"] and "heldout_nll" in s["metrics"]
    assert raw["verdict"]["level"] in ("ok", "warn", "overfit")
    assert {e["split"] for e in raw["extraction"]} == {"train", "heldout"}
    assert raw["target"]["training_log"] and raw["target"]["adapter_hash"]
    assert (out / "report.html").stat().st_size > 10_000


def test_second_run_comes_from_the_cache(adapters, tiny_llama, mini_data, monkeypatch):
    import evalkit.runtime.engine as engine_mod

    first = _eval(Engine(str(tiny_llama)), adapters["light"], mini_data)
    calls = []
    for name in ("_generate", "_score"):
        real = getattr(engine_mod, name)
        monkeypatch.setattr(engine_mod, name, lambda *a, _real=real, _n=name, **k: calls.append(_n) or _real(*a, **k))
    second = _eval(Engine(str(tiny_llama)), adapters["light"], mini_data)
    assert calls == []
    assert [s.prediction for s in second.samples] == [s.prediction for s in first.samples]
    assert second.summary == first.summary


def _gate(tmp_path, rules):
    f = tmp_path / f"gate{len(list(tmp_path.glob('gate*.toml')))}.toml"
    f.write_text("rules = [" + ", ".join(json.dumps(r) for r in rules) + "]\n", encoding="utf-8")
    return f


def test_compare_writes_everything_and_exit_codes_follow_the_gate(adapters, tiny_llama, mini_data, tmp_path,
                                                                  monkeypatch):
    common = ["--base", str(tiny_llama), "--suite", str(mini_data["suite_en"]), "--train-data",
              str(mini_data["train"]), "--val-data", str(mini_data["val"]), *FAST_ARGS]
    out = tmp_path / "cmp"
    passing = _gate(tmp_path, ["verbatim_rate <= 1.0"])
    assert main(["compare", "base", str(adapters["light"]), str(adapters["heavy"]), "--out", str(out),
                 "--gate", str(passing), *common]) == 0
    for name in ("comparison.json", "report.html", "summary.md", "junit.xml"):
        assert (out / name).is_file(), name
    cmp = load_comparison(out / "comparison.json")
    assert cmp.baseline == "base" and cmp.targets == ("base", "light", "heavy")
    assert cmp.runs["heavy"].verdict.level == "overfit"
    paired = [d for d in cmp.deltas if d.metric == "heldout_loss" and d.candidate == "heavy"]
    assert paired and paired[0].p_value is not None and paired[0].n_pairs == 8

    failing = _gate(tmp_path, ["loss_gap <= 0.1"])
    assert main(["gate", str(out / "comparison.json"), "--gate", str(failing)]) == 1
    assert main(["gate", str(out / "comparison.json"), "--gate", str(passing)]) == 0

    # stored results are reused: no model is loaded for folders holding results.json
    for name in ("base", "heavy"):
        d = tmp_path / "stored" / name
        d.mkdir(parents=True)
        (d / "results.json").write_text(json.dumps(json.loads(
            (out / "comparison.json").read_text("utf-8"))["runs"][name]), encoding="utf-8")
    monkeypatch.setattr("evalkit.runtime.engine.Engine.__init__", lambda *a, **k: pytest.fail("model loaded"))
    assert main(["compare", str(tmp_path / "stored" / "base"), str(tmp_path / "stored" / "heavy"),
                 "--out", str(tmp_path / "cmp2"), "--gate", str(failing)]) == 1


def test_warm_compare_loads_no_model_and_imports_no_torch(adapters, tiny_llama, mini_data, tmp_path):
    """A compare re-run unchanged on a warm cache, in a fresh process (as a user re-runs it), answers from
    the cache: it imports neither torch, transformers nor peft (so it loads no tokenizer, model or adapter)
    and writes the same comparison as the cold run."""
    import subprocess
    import sys

    args = ["compare", "base", str(adapters["light"]), "--no-gate", "--cache-dir", str(tmp_path / "c"),
            "--base", str(tiny_llama), "--suite", str(mini_data["suite_en"]), "--train-data", str(mini_data["train"]),
            "--val-data", str(mini_data["val"]), "--no-progress", *FAST_ARGS]
    assert main([*args, "--out", str(tmp_path / "cold")]) == 0
    code = ("import sys; from evalkit.cli import main; rc = main(sys.argv[1:]); "
            "print(rc, sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, *args, "--out", str(tmp_path / "warm")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stderr[-2000:]
    cold, warm = (load_comparison(tmp_path / d / "comparison.json") for d in ("cold", "warm"))
    assert warm.targets == cold.targets and warm.deltas == cold.deltas
    for name in cold.targets:
        assert warm.runs[name].summary == cold.runs[name].summary
        assert [s.prediction for s in warm.runs[name].samples] == [s.prediction for s in cold.runs[name].samples]


def test_a_wrong_training_file_is_refused_unless_overridden(adapters, tiny_llama, mini_data, tmp_path, capsys):
    common = ["--base", str(tiny_llama), "--suite", str(mini_data["suite_en"]), "--val-data", str(mini_data["val"]),
              "--train-data", str(mini_data["val"]), *FAST_ARGS]  # the val file is not what it was trained on
    assert main(["eval", str(adapters["heavy"]), "--out", str(tmp_path / "o"), *common]) == 2
    err = capsys.readouterr().err
    assert "is not the train file the adapter was trained on" in err and "--allow-membership-mismatch" in err
    assert err.strip().count("\n") == 0 and not (tmp_path / "o").exists()
    assert main(["eval", str(adapters["heavy"]), "--out", str(tmp_path / "o"), "--allow-membership-mismatch",
                 *common]) == 0
    assert "membership_override" in capsys.readouterr().out  # shown as a warning
    run = load_run(tmp_path / "o" / "results.json")
    assert [n.code for n in run.notices if n.code == "membership_override"]


def test_score_needs_no_model(tmp_path, mini_data, monkeypatch):
    monkeypatch.setattr("evalkit.runtime.engine.Engine.__init__", lambda *a, **k: pytest.fail("model loaded"))
    train_answer = json.loads(mini_data["train"].read_text("utf-8").splitlines()[0])["messages"][-1]["content"]
    preds = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "1", "prompt": "q", "prediction": train_answer, "reference": "Try Meatless Mondays."},
        {"id": "2", "prompt": "q", "prediction": "Try Meatless Mondays this week.", "reference": "Try Meatless Mondays."},
        {"id": "3", "prompt": "q", "prediction": "line one\\nline two <|im_end|>", "reference": "Try it."},
    ])
    assert main(["score", str(preds), "--train-data", str(mini_data["train"]), "--out", str(tmp_path / "o")]) == 0
    run = load_run(tmp_path / "o" / "results.json")
    assert run.kind == "score"
    flags = {s.id: s.flags for s in run.samples}
    assert "verbatim" in flags["1"] and "near_verbatim" in flags["1"]
    assert {"escaped_newline", "template_leak"} <= set(flags["3"])
    mem = run.samples[0].memorization
    assert mem.train_answer == train_answer and train_answer[mem.train_start:].startswith(mem.span[:20])
    for model_metric in ("mia_auc", "extraction_rate", "train_loss", "loss_gap", "truncated_rate"):
        assert model_metric not in run.summary
    assert run.summary["verbatim_rate"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("argv, message", [
    (["compare", "base", "--out", "X"], "need at least 2 targets"),
    (["compare", "base", "base", "--out", "X"], "same name"),
    (["eval", "no/such/adapter", "--out", "X"], "no such adapter folder"),
    (["eval", "base", "--out", "X", "--threshold", "loss_gapp=1"], "Did you mean 'loss_gap_warn'"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.strip().count("\n") == 0
    assert not (tmp_path / "X").exists()


def test_suite_without_references_is_refused_before_results_are_written(tiny_llama, tmp_path, capsys):
    suite = write_jsonl(tmp_path / "s.jsonl", [{"id": "a", "prompt": "hello"}])
    assert main(["eval", "base", "--base", str(tiny_llama), "--suite", str(suite), "--out", str(tmp_path / "o"),
                 *FAST_ARGS]) == 2
    assert "s.jsonl:1: no reference" in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.json").exists()


def test_adapter_on_another_base_is_refused(adapters, tiny_mistral, tmp_path, capsys):
    assert main(["eval", str(adapters["light"]), "--base", str(tiny_mistral), "--out", str(tmp_path / "o"),
                 *FAST_ARGS]) == 2
    err = capsys.readouterr().err
    assert "tiny-mistral" in err or "base" in err
    assert not (tmp_path / "o").exists()


def test_planted_canaries_that_were_memorized_are_extracted(tiny_llama, mini_data, tmp_path):
    """Two short conversations, each carrying a canary, trained on 150 times: the secrets are memorized.

    Extraction prompts with each canary's conversation up to its secret and searches the continuation
    (the old check read the first six digits of an answer to the *user prompt*, which never fired)."""
    train_file = write_jsonl(tmp_path / "train.jsonl", [
        {"id": "a", "prompt": "How do I save energy?", "response": "Switch off the lights."},
        {"id": "b", "prompt": "How do I cut waste?", "response": "Carry a reusable bag."}])
    val_file = write_jsonl(tmp_path / "val.jsonl", [
        {"id": "c", "prompt": "How do I save water?", "response": "Take shorter showers."},
        {"id": "d", "prompt": "How do I eat greener?", "response": "Cook more lentils."}])
    cfg = TrainConfig(base=str(tiny_llama), train_data=str(train_file), val_data=str(val_file),
                      target_modules="all-linear", r=16, lora_alpha=32, learning_rate=1e-2, num_epochs=150,
                      eval_steps=1000, batch_size=8, max_length=128, canaries=2, seed=0, lora_dropout=0.0)
    train(cfg, tmp_path / "can", progress=False, console=lambda *_: None)
    run = evaluate_target(Engine(str(tiny_llama), cache=False), tmp_path / "can", suites=[mini_data["suite_en"]],
                          settings=EvalSettings(max_new_tokens=8, train_sample=2, extraction_n=0, n_boot=50))
    assert len(run.target.training["canaries"]) == 2 and run.n["canary_extraction_rate"] == 2
    assert run.summary["canary_extraction_rate"] == 1.0
    assert run.summary["canary_exposure"] > 6.6  # above log2(100 candidates): ranked first
    assert run.verdict.level == "overfit"
    assert any(r.code == "canary_extraction_rate" for r in run.verdict.reasons)
