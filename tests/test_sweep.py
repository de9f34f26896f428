"""Sweeps: grid expansion and names, validation, a 2x1 grid trained on a tiny model, resuming."""

from __future__ import annotations



import json
from pathlib import Path

import pytest
import yaml

from evalkit.cli import main
from evalkit.errors import ConfigError
from evalkit.sweep import INDEX_NAME, load_sweep, run_sweep

REPO = Path(__file__).resolve().parent.parent
SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def test_seed_plan_is_the_seeds_plan(tmp_path):
    plan = load_sweep(REPO / "configs/sweep_seed_plan.yaml", out=tmp_path / "s")
    assert len(plan.variants) == 18
    names = [v.name for v in plan.variants]
    assert names[:2] == ["qv_lr5e-05_r16a32", "qv_lr5e-05_r8a16"] and names[-1] == "all7_lr1e-05_r8a16"
    assert len(set(names)) == 18
    targets = {tuple(v.config.target_modules) for v in plan.variants}
    assert targets == {("q_proj", "v_proj"), ("q_proj", "k_proj", "v_proj", "o_proj"), tuple(SEVEN)}
    assert {v.config.learning_rate for v in plan.variants} == {5e-5, 2e-5, 1e-5}
    assert {(v.config.r, v.config.lora_alpha) for v in plan.variants} == {(16, 32), (8, 16)}
    assert all((v.config.lora_dropout, v.config.bias) == (0.05, "none") for v in plan.variants)
    assert plan.variants[0].overrides == {"target_modules": ["q_proj", "v_proj"], "learning_rate": 5e-5,
                                          "r": 16, "lora_alpha": 32}
    assert plan.variants[0].folder == tmp_path / "s" / "qv_lr5e-05_r16a32"
    assert load_sweep(REPO / "configs/sweep_seed_plan.yaml").out == Path("reports/sweeps/seed-plan")


def test_config_file_and_overrides(tmp_path):
    cfg = tmp_path / "base.toml"
    cfg.write_text('r = 4\nlearning_rate = 1e-3\ntarget_modules = "attention"\n', encoding="utf-8")
    f = _write(tmp_path / "s.yaml", {"config": "base.toml", "base_config": {"r": 2},
                                      "grid": {"seed": [0, 1], "num_epochs": [0.5]}, "out": "x"})
    plan = load_sweep(f, overrides=["max_steps=3"])
    assert [v.name for v in plan.variants] == ["seed0_ep0.5", "seed1_ep0.5"]
    c = plan.variants[1].config
    assert (c.r, c.learning_rate, c.max_steps, c.seed, c.target_modules[:2]) == (2, 1e-3, 3, 1, ["q_proj", "k_proj"])


@pytest.mark.parametrize("spec, message", [
    ({"grid": {"learning_rat": [1e-4]}, "out": "x"}, "unknown grid key 'learning_rat'. Did you mean 'learning_rate'?"),
    ({"grid": {"r_alph": [[8, 16]]}, "out": "x"}, "Did you mean 'r_alpha'?"),
    ({"grid": {"r": 8}, "out": "x"}, "grid 'r' must be a non-empty list"),
    ({"grid": {"r_alpha": [8]}, "out": "x"}, "each grid 'r_alpha' value must be a list [r, lora_alpha]"),
    ({"grid": {"r_alpha": [[8, 16]], "r": [4]}, "out": "x"}, "both set r"),
    ({"grid": {"r": [0]}, "out": "x"}, "The 'r' parameter must be a positive int. Got 0 instead."),
    ({"grid": {"target_modules": ["all7", SEVEN]}, "out": "x"}, "give the same variant 'all7'"),
    ({"grid": {"r": [8]}}, "no output folder"),
    ({"grd": {"r": [8]}, "out": "x"}, "unknown sweep key 'grd'. Did you mean 'grid'?"),
    ({"base_config": {"lora_alhpa": 3}, "grid": {"r": [8]}, "out": "x"}, "Did you mean 'lora_alpha'?"),
])
def test_bad_sweep_files(tmp_path, spec, message):
    f = _write(tmp_path / "s.yaml", spec)
    with pytest.raises(ConfigError) as e:
        load_sweep(f)
    assert message in str(e.value)
    assert str(f) in str(e.value) or "base_config" not in spec


@pytest.fixture(scope="module")
def sweep_file(tiny_llama, mini_data, tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("sweep")
    f = _write(d / "sweep.yaml", {
        "base_config": {"base": str(tiny_llama), "train_data": str(mini_data["train"]),
                        "val_data": str(mini_data["val"]), "max_steps": 2, "eval_steps": 1, "eval_subset": 4},
        "grid": {"learning_rate": [1e-3, 1e-4], "r_alpha": [[4, 8]]},
        "out": str(d / "out"),
    })
    return f, d / "out"


def test_sweep_trains_each_variant_then_resumes(sweep_file, capsys):
    f, out = sweep_file
    assert main(["sweep", str(f), "--no-progress", "--no-compare"]) == 0
    stdout = capsys.readouterr().out
    assert "[1/2] lr0.001_r4a8" in stdout and "[2/2] lr0.0001_r4a8" in stdout
    assert "2 trained, 0 already up to date" in stdout and str(out / INDEX_NAME) in stdout
    index = json.loads((out / INDEX_NAME).read_text(encoding="utf-8"))
    assert list(index["variants"]) == ["lr0.001_r4a8", "lr0.0001_r4a8"]
    first = index["variants"]["lr0.001_r4a8"]
    assert first["overrides"] == {"learning_rate": 1e-3, "r": 4, "lora_alpha": 8}
    assert first["folder"] == "lr0.001_r4a8" and first["status"] == "done" and first["skipped"] is False
    assert first["final"]["step"] == 2 and first["final"]["val_loss"] > 0
    for name in index["variants"]:
        rec = json.loads((out / name / "evalkit.json").read_text())
        assert rec["final"] == index["variants"][name]["final"]
    assert rec["config"]["learning_rate"] == 1e-4 and rec["config"]["r"] == 4

    # a killed run's temp folder is cleaned; finished variants are skipped
    stale = out / ".lr0.001_r4a8.tmp-999999999-abc"
    stale.mkdir()
    result = run_sweep(load_sweep(f), progress=False, console=lambda s: None)
    assert (len(result.trained), len(result.skipped)) == (0, 2)
    assert not stale.exists()
    index = json.loads((out / INDEX_NAME).read_text(encoding="utf-8"))
    assert all(v["status"] == "done" and v["skipped"] for v in index["variants"].values())
    assert sorted(p.name for p in out.iterdir()) == ["index.json", "lr0.0001_r4a8", "lr0.001_r4a8"]

    assert main(["sweep", str(f), "--dry-run"]) == 0
    stdout = capsys.readouterr().out
    assert stdout.count(" done ") == 2 and "learning_rate=0.001 r=4 lora_alpha=8" in stdout


def test_sweep_dry_run_trains_nothing(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["sweep", str(REPO / "configs/sweep_seed_plan.yaml"), "--out", str(out), "--dry-run"]) == 0
    stdout = capsys.readouterr().out
    assert "18 variant(s)" in stdout and stdout.count("to train") == 18
    assert not out.exists()


def test_sweep_cli_bad_file_exits_2(tmp_path, capsys):
    f = _write(tmp_path / "s.yaml", {"grid": {"learning_rat": [1e-4]}, "out": str(tmp_path / "o")})
    assert main(["sweep", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Did you mean 'learning_rate'?" in err[0]
    assert not (tmp_path / "o").exists()


def test_a_failing_variant_is_recorded_and_stops_the_sweep(tiny_llama, mini_data, tmp_path):
    f = _write(tmp_path / "s.yaml", {
        "base_config": {"base": str(tiny_llama), "train_data": str(mini_data["train"]),
                        "val_data": str(mini_data["val"]), "max_steps": 1},
        "grid": {"target_modules": [["q_proj"], ["c_attn"]]}, "out": str(tmp_path / "o")})
    with pytest.raises(ConfigError, match=r"sweep variant 'c_attn' \(2/2\): target_modules \['c_attn'\] not found"):
        run_sweep(load_sweep(f), progress=False, console=lambda s: None)
    index = json.loads((tmp_path / "o" / INDEX_NAME).read_text())
    assert index["variants"]["q"]["status"] == "done"
    assert index["variants"]["c_attn"]["status"] == "failed" and "c_attn" in index["variants"]["c_attn"]["error"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["index.json", "q"]


def test_sweep_ends_with_the_compare_of_its_variants(tiny_llama, mini_data, tmp_path, capsys):
    # four variants + base = 5 targets: the compare's sweep view and its recommendation, in OUT/compare
    # and printed, exactly what `evalkit compare base <variants>` computes from the same records
    from evalkit.records import load_comparison
    from evalkit.report.view import build_view

    f = _write(tmp_path / "s.yaml", {
        "base_config": {"base": str(tiny_llama), "train_data": str(mini_data["train"]),
                        "val_data": str(mini_data["val"]), "max_steps": 1, "eval_steps": 1, "eval_subset": 4},
        "grid": {"learning_rate": [1e-3, 3e-4, 1e-4, 3e-5], "r_alpha": [[4, 8]]},
        "out": str(tmp_path / "out"),
    })
    args = ["--no-progress", "--suite", str(mini_data["suite_en"]), "--limit", "2", "--train-sample", "4",
            "--extraction-n", "2", "--max-new-tokens", "8", "--cache-dir", str(tmp_path / "cache")]
    assert main(["sweep", str(f), *args]) == 0
    stdout = capsys.readouterr().out
    out = tmp_path / "out" / "compare"
    comp = load_comparison(out / "comparison.json")
    variants = ["lr0.001_r4a8", "lr0.0003_r4a8", "lr0.0001_r4a8", "lr3e-05_r4a8"]
    assert list(comp.targets) == ["base", *variants] and comp.baseline == "base" and comp.gate is None
    sweep = build_view(comp).sweep
    assert sweep is not None and [r.target.name for r in sweep.rows] == ["base", *variants]
    assert f"sweep: {sweep.recommendation}" in stdout
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="recommendation"' in html and (out / "summary.md").is_file()
    # a rerun trains nothing and reuses the cached evaluations; --no-compare stops after training
    assert main(["sweep", str(f), *args, "--no-compare"]) == 0
    assert "0 trained, 4 already up to date" in capsys.readouterr().out
