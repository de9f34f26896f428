"""evalkit train on tiny random models: the loss table, the adapter, evalkit.json, atomicity, CLI errors."""

from __future__ import annotations



import json
import shutil
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.config import load_config
from evalkit.errors import ConfigError
from evalkit.runtime.train import LOG_NAME, RECORD_NAME, train

REPO = Path(__file__).resolve().parent.parent
SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _cfg(base: Path, data: dict, *extra: str):
    return load_config(None, [f"base={base}", f"train_data={data['train']}", f"val_data={data['val']}",
                              "batch_size=8", *extra])


def _leftovers(out: Path) -> list[str]:
    """The output folder itself, or any hidden temp sibling of it."""
    parent = out.parent
    if not parent.exists():
        return []
    return sorted(p.name for p in parent.iterdir() if p.name == out.name or p.name.startswith(f".{out.name}."))


@pytest.fixture(scope="module")
def trained(tiny_llama, mini_data, tmp_path_factory):
    """30 steps at a high learning rate on 24 conversations (10 epochs): the loss must fall."""
    out = tmp_path_factory.mktemp("train") / "adapter"
    cfg = _cfg(tiny_llama, mini_data, "target_modules=all7", "r=8", "lora_alpha=16", "learning_rate=1e-2",
               "max_steps=30", "eval_steps=10")
    lines: list[str] = []
    result = train(cfg, out, progress=False, console=lines.append)
    return result, out, lines, cfg


def test_loss_falls_and_the_log_has_one_row_per_eval(trained):
    result, out, lines, _ = trained
    rows = [json.loads(ln) for ln in (out / LOG_NAME).read_text(encoding="utf-8").splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert all(set(r) == {"step", "epoch", "train_loss", "val_loss", "learning_rate"} for r in rows)
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] - 0.01
    assert all(0 < r["val_loss"] < 10 for r in rows)
    assert rows[0]["epoch"] == pytest.approx(10 / 3, abs=1e-3)  # 24 conversations / batch 8 = 3 steps an epoch
    lrs = [r["learning_rate"] for r in rows]
    assert lrs == sorted(lrs, reverse=True)  # linear decay
    # the seed's table on the console
    assert any(ln.split() == ["step", "|", "train", "loss", "|", "val", "loss"] for ln in lines)
    assert any(ln.split()[:1] == ["30"] and f"{rows[-1]['val_loss']:.4f}" in ln for ln in lines)
    assert (result.final_step, result.val_loss) == (30, rows[-1]["val_loss"])


def test_final_row_when_steps_are_not_a_multiple_of_eval_steps(tiny_llama, mini_data, tmp_path):
    result = train(_cfg(tiny_llama, mini_data, "max_steps=5", "eval_steps=2", "eval_subset=4"), tmp_path / "a",
                   progress=False, console=lambda s: None)
    rows = [json.loads(ln) for ln in (tmp_path / "a" / LOG_NAME).read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 5]
    assert result.record["final"] == rows[-1]  # evalkit.json's final row is the log's last row, every field
    assert result.record["data"]["val"]["n_used"] == 4


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_adapter_reloads_with_peft_and_reproduces_logits(trained, tiny_llama):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result, out, _, _ = trained
    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()
    ids = torch.tensor([[1, 5, 9, 33, 70, 2, 11, 90]])
    with torch.no_grad():
        expected = result.model(input_ids=ids).logits
        reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), out).eval()
        got = reloaded(input_ids=ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(base, expected, atol=1e-3)  # the adapter changed something
    adapter_cfg = json.loads((out / "adapter_config.json").read_text())
    assert sorted(adapter_cfg["target_modules"]) == sorted(SEVEN)
    assert (adapter_cfg["r"], adapter_cfg["lora_alpha"], adapter_cfg["task_type"]) == (8, 16, "CAUSAL_LM")


def test_evalkit_json_records_provenance(trained, mini_data):
    from evalkit.io import sha256_file
    from evalkit.runtime.models import adapter_hash

    result, out, _, cfg = trained
    rec = json.loads((out / RECORD_NAME).read_text(encoding="utf-8"))
    assert rec == result.record
    assert rec["format"] == 1 and rec["config"] == cfg.to_dict() and rec["seed"] == 0
    assert set(rec["base"]) == {"spec", "identity", "content_hash"}
    assert rec["data"]["train"]["sha256"] == sha256_file(mini_data["train"])
    assert rec["data"]["train"]["n_examples"] == rec["data"]["train"]["n_used"] == 24
    assert rec["data"]["val"]["n_examples"] == 8
    assert rec["template"]["source"] == "tokenizer" and len(rec["template"]["sha256"]) == 64
    assert rec["canaries"] == []
    import peft
    import torch
    import transformers

    from evalkit import __version__

    # the stack that trained it (and whatever else computed with it: numpy, ...), as the installed versions
    assert {k: rec["versions"][k] for k in ("torch", "transformers", "peft", "evalkit")} == {
        "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
        "evalkit": __version__}
    assert rec["adapter_sha256"] == adapter_hash(out)
    assert rec["device"] == "cpu" and rec["runtime_s"] > 0 and rec["created_at"].endswith("+00:00")
    assert rec["final"]["step"] == 30 and isinstance(rec["command"], str)


def test_rerun_with_the_same_config_is_up_to_date(trained):
    result, out, _, cfg = trained
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    lines: list[str] = []
    again = train(cfg, out, progress=False, console=lines.append)
    assert again.up_to_date and again.model is None
    assert again.final_step == 30 and again.val_loss == result.val_loss
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert "up to date" in lines[-1]


def test_seed_config_trains_on_tiny_mistral_with_all_seven_modules(tiny_mistral, mini_data, tmp_path):
    cfg = load_config(REPO / "configs/seed.yaml", [f"base={tiny_mistral}", f"train_data={mini_data['train']}",
                                                   f"val_data={mini_data['val']}", "max_steps=1"])
    result = train(cfg, tmp_path / "seed", progress=False, console=lambda s: None)
    adapter_cfg = json.loads((tmp_path / "seed" / "adapter_config.json").read_text())
    assert sorted(adapter_cfg["target_modules"]) == sorted(SEVEN)
    assert (adapter_cfg["r"], adapter_cfg["lora_alpha"], adapter_cfg["lora_dropout"], adapter_cfg["bias"]) == \
        (16, 32, 0.05, "none")
    assert result.final_step == 1 and result.record["final"]["val_loss"] is not None


def test_train_subset_is_a_seeded_subset(tiny_llama, mini_data, tmp_path):
    from evalkit.data import load_conversations

    res = [train(_cfg(tiny_llama, mini_data, "train_subset=10", "max_steps=1", f"seed={s}"), tmp_path / f"s{s}",
                 progress=False, console=lambda s: None).record["data"]["train"] for s in (0, 0, 1)
           if not (tmp_path / f"s{s}").exists() or True]
    ids = [c.id for c in load_conversations(mini_data["train"])]
    assert res[0]["n_used"] == 10 and len(res[0]["used_ids"]) == 10
    assert set(res[0]["used_ids"]) <= set(ids)
    assert res[0]["used_ids"] == res[1]["used_ids"] != res[2]["used_ids"]


def test_canaries_are_planted_and_recorded(tiny_llama, mini_data, tmp_path):
    pytest.importorskip("evalkit.memorization.canaries")
    from evalkit.data import load_conversations

    result = train(_cfg(tiny_llama, mini_data, "canaries=3", "max_steps=1", "max_length=512"), tmp_path / "c",
                   progress=False, console=lambda s: None)
    canaries = result.record["canaries"]
    ids = {c.id for c in load_conversations(mini_data["train"])}
    assert len(canaries) == 3 and len({c["id"] for c in canaries}) == 3
    assert all(set(c) == {"id", "text", "secret", "train_id", "repeats"} and c["repeats"] == 1 for c in canaries)
    assert all(c["train_id"] in ids and c["secret"] in c["text"] for c in canaries)
    assert len({c["train_id"] for c in canaries}) == 3


def test_a_canary_cut_off_by_max_length_is_refused(tiny_llama, mini_data, tmp_path):
    pytest.importorskip("evalkit.memorization.canaries")
    with pytest.raises(ConfigError, match="would cut the canary off; raise max_length"):
        train(_cfg(tiny_llama, mini_data, "canaries=2", "max_steps=1", "max_length=100"), tmp_path / "c",
              progress=False, console=lambda s: None)
    assert _leftovers(tmp_path / "c") == []


def test_overwrite_replaces_a_different_adapter(tiny_llama, mini_data, tmp_path):
    out = tmp_path / "a"
    train(_cfg(tiny_llama, mini_data, "max_steps=1"), out, progress=False, console=lambda s: None)
    with pytest.raises(ConfigError, match="already holds a different adapter .*r=16 \\(now 4\\)"):
        train(_cfg(tiny_llama, mini_data, "max_steps=1", "r=4"), out, progress=False, console=lambda s: None)
    train(_cfg(tiny_llama, mini_data, "max_steps=1", "r=4"), out, overwrite=True, progress=False,
          console=lambda s: None)
    assert json.loads((out / RECORD_NAME).read_text())["config"]["r"] == 4
    assert _leftovers(out) == ["a"]


def test_an_interrupted_run_leaves_nothing(tiny_llama, mini_data, tmp_path, monkeypatch):
    import transformers

    def boom(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(transformers.Trainer, "train", boom)
    out = tmp_path / "new" / "deeper" / "adapter"
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(tiny_llama, mini_data, "max_steps=1"), out, progress=False, console=lambda s: None)
    assert not (tmp_path / "new").exists()  # not even the parent folders it created


def test_stale_temp_folders_of_dead_runs_are_removed(tiny_llama, mini_data, tmp_path):
    stale = tmp_path / ".a.tmp-999999999-x"
    stale.mkdir()
    (stale / "adapter_model.safetensors").write_bytes(b"half")
    train(_cfg(tiny_llama, mini_data, "max_steps=1"), tmp_path / "a", progress=False, console=lambda s: None)
    assert _leftovers(tmp_path / "a") == ["a"]


# ---------------------------------------------------------------------- CLI: every bad input exits 2, one line


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["train", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def _fail(capsys, out: Path, *argv) -> str:
    rc, _, err = _run(capsys, "--out", out, "--no-progress", *argv)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evalkit: error: "), err
    assert _leftovers(out) == [] or out.name in _leftovers(out)  # checked precisely by callers
    return lines[0]


def test_cli_trains_and_reports_where_it_wrote(capsys, tiny_llama, mini_data, tmp_path):
    out = tmp_path / "cli"
    rc, stdout, _ = _run(capsys, "--out", out, "--no-progress", "--base", tiny_llama, "--set",
                         f"train_data={mini_data['train']}", "--set", f"val_data={mini_data['val']}",
                         "--target-modules", "q_proj,v_proj", "--r", "4", "--lora-alpha", "8",
                         "--learning-rate", "5e-5", "--max-steps", "2", "--set", "eval_steps=1")
    assert rc == 0
    assert f"adapter written to {out}" in stdout and "train loss" in stdout
    cfg = json.loads((out / RECORD_NAME).read_text())["config"]
    assert (cfg["r"], cfg["lora_alpha"], cfg["learning_rate"], cfg["target_modules"]) == (4, 8, 5e-5,
                                                                                          ["q_proj", "v_proj"])
    rc, stdout, _ = _run(capsys, "--out", out, "--no-progress", "--base", tiny_llama, "--set",
                         f"train_data={mini_data['train']}", "--set", f"val_data={mini_data['val']}",
                         "--target-modules", "q_proj,v_proj", "--r", "4", "--lora-alpha", "8",
                         "--learning-rate", "5e-5", "--max-steps", "2", "--set", "eval_steps=1")
    assert rc == 0 and "up to date" in stdout


def test_cli_missing_config(capsys, tmp_path):
    msg = _fail(capsys, tmp_path / "o", "--config", tmp_path / "nope.yaml")
    assert "nope.yaml: no such config file" in msg
    assert _leftovers(tmp_path / "o") == []


def test_cli_malformed_yaml(capsys, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("r: 16\nlora_alpha 32\n", encoding="utf-8")
    msg = _fail(capsys, tmp_path / "o", "--config", f)
    assert f"{f}:2: not valid YAML" in msg
    assert _leftovers(tmp_path / "o") == []


def test_cli_unknown_key_with_suggestion(capsys, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("r: 16\nlora_alhpa: 32\n", encoding="utf-8")
    msg = _fail(capsys, tmp_path / "o", "--config", f)
    assert f"{f}:2: unknown setting 'lora_alhpa'. Did you mean 'lora_alpha'?" in msg
    assert _leftovers(tmp_path / "o") == []


def test_cli_broken_data_line(capsys, tiny_llama, mini_data, tmp_path):
    bad = tmp_path / "train.jsonl"
    lines = mini_data["train"].read_text(encoding="utf-8").splitlines()
    bad.write_text("\n".join(lines[:2] + ['{"id": "x", "messages": [}'] + lines[2:]) + "\n", encoding="utf-8")
    msg = _fail(capsys, tmp_path / "o", "--base", tiny_llama, "--set", f"train_data={bad}", "--set",
                f"val_data={mini_data['val']}")
    assert f"{bad}:3: not valid JSON" in msg
    assert _leftovers(tmp_path / "o") == []


def test_cli_empty_split(capsys, tiny_llama, mini_data, tmp_path):
    empty = tmp_path / "val.jsonl"
    empty.write_text("\n", encoding="utf-8")
    msg = _fail(capsys, tmp_path / "o", "--base", tiny_llama, "--set", f"train_data={mini_data['train']}",
                "--set", f"val_data={empty}")
    assert f"{empty}: no conversation records" in msg
    assert _leftovers(tmp_path / "o") == []


def test_cli_unknown_target_module_lists_the_models(capsys, tiny_mistral, mini_data, tmp_path):
    msg = _fail(capsys, tmp_path / "o", "--base", tiny_mistral, "--set", f"train_data={mini_data['train']}",
                "--set", f"val_data={mini_data['val']}", "--target-modules", "q_proj,c_attn")
    assert "['c_attn'] not found in the base model" in msg
    assert "down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, v_proj" in msg
    assert _leftovers(tmp_path / "o") == []


def test_cli_out_dir_with_a_different_adapter(capsys, trained, tiny_llama, mini_data, tmp_path):
    _, src, _, _ = trained
    out = tmp_path / "o"
    shutil.copytree(src, out)
    before = sorted(p.name for p in out.iterdir())
    msg = _fail(capsys, out, "--base", tiny_llama, "--set", f"train_data={mini_data['train']}",
                "--set", f"val_data={mini_data['val']}", "--r", "2", "--max-steps", "1")
    assert "already holds a different adapter" in msg and "--overwrite" in msg
    assert sorted(p.name for p in out.iterdir()) == before and _leftovers(out) == ["o"]


def test_cli_out_dir_that_is_not_an_adapter(capsys, tiny_llama, mini_data, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    msg = _fail(capsys, out, "--base", tiny_llama, "--set", f"train_data={mini_data['train']}",
                "--set", f"val_data={mini_data['val']}", "--overwrite")
    assert "not an evalkit adapter" in msg
    assert (out / "notes.txt").read_text() == "mine" and _leftovers(out) == ["o"]


def test_cli_bad_override_value(capsys, tmp_path):
    msg = _fail(capsys, tmp_path / "o", "--r", "-4")
    assert "override r=-4: The 'r' parameter must be a positive int. Got -4 instead." in msg


def test_encoding_matches_the_template_encoder_and_restores_the_tokenizer(tiny_llama, mini_data):
    from evalkit.data import load_conversations
    from evalkit.runtime.models import load_tokenizer, resolve_base
    from evalkit.runtime.chat_templates import IGNORE_INDEX, encode_conversation
    from evalkit.runtime.train import _encode

    tok = load_tokenizer(resolve_base(str(tiny_llama)))
    convs = load_conversations(mini_data["train"])[:4]
    rows, kept = _encode(tok, convs, 512)
    assert kept == [c.id for c in convs]
    for row, c in zip(rows, convs):
        ids, labels = encode_conversation(tok, list(c.messages), 512)
        assert (row["input_ids"], row["labels"]) == (ids, labels)
        assert any(x != IGNORE_INDEX for x in labels) and labels[0] == IGNORE_INDEX  # assistant tokens only
