"""The detection study's plumbing at --size tiny on a random tiny model (the figures come from --size small)."""

from __future__ import annotations

from benchmarks import bench_detection_study as study
from benchmarks.runner import Context


def test_detection_study_tiny_gives_a_row_per_variant(tmp_path, tiny_llama):
    ctx = Context(size="tiny", work=tmp_path / "work", log=lambda m: None, shared={"base": str(tiny_llama)})
    r = study.run(ctx)
    d = r["detail"]
    names = [v["variant"] for v in d["variants"]]
    assert names == ["base", study.LADDER[0][0], study.LADDER[-1][0], study.TEMPLATED[0]]
    assert [v["strength"] for v in d["variants"]] == [0, 1, 2, None]
    # the templated variant is evaluated against its own leaky validation split
    tpl = d["variants"][-1]
    assert "val_leak" in tpl["notices"] and "val_leak" in tpl["reasons"] and tpl["verdict"] != "ok"
    assert set(d["checks"]) >= {"never_ok_strongest_half", "never_overfit_base_or_weakest",
                                "canaries_dup_ge8_extracted", "spearman_gap_tpr_ge_0.9"}
    assert set(study.SIGNALS) <= set(d["spearman_vs_strength"])
    assert r["name"] == "detection_study" and isinstance(r["met"], bool)
