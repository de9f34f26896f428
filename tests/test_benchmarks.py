"""Each benchmark runs at --size tiny and gives a well-formed row; the runner's plumbing.

Timing targets are judged in benchmarks/ (python -m benchmarks run), never here.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from benchmarks import runner
from benchmarks.runner import Context

needs_lm_eval = pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None,
                                   reason="lm_eval is not installed (the [bench] extra: pip install -e '.[bench]')")


def _ctx(tmp_path, **kw) -> Context:
    return Context(size="tiny", work=tmp_path / "work", log=lambda m: None, **kw)


def _well_formed(r: dict, name: str) -> None:
    assert r["name"] == name
    assert ("ratio" in r) != ("value" in r)
    fig = r.get("ratio", r.get("value"))
    assert isinstance(fig, float) and fig > 0
    assert isinstance(r["target"], str) and r["target"]
    assert r["met"] in (True, False, None)
    assert isinstance(r["detail"], dict) and r["detail"]["summary"]
    json.dumps(r)


def test_rouge_benchmark_tiny(tmp_path):
    from benchmarks import bench_rouge

    r = bench_rouge.run(_ctx(tmp_path))
    _well_formed(r, "rouge_vs_rouge_score")
    assert r["detail"]["values_equal"] is True and r["detail"]["pairs"] == 200


def test_memo_index_benchmark_tiny(tmp_path):
    from benchmarks import bench_memo_index

    r = bench_memo_index.run(_ctx(tmp_path))
    _well_formed(r, "memo_index_1e6")
    s = r["detail"]["sizes"][0]
    assert s["answers"] == 1000 and s["planted_missed"] == 0 and s["brute_force_unequal"] == 0
    assert r["met"] is None  # 10^6 answers only at --size large


def test_memo_queries_plant_copies():
    from benchmarks.bench_memo_index import make_answers, make_queries, vocabulary

    vocab = vocabulary()
    answers = make_answers(20, vocab, seed=1)
    queries, planted = make_queries(10, answers, vocab, seed=2)
    assert len(queries) == 10 and [q for q, _ in planted] == [0, 5]
    assert all(13 <= n <= 40 for _, n in planted)


@needs_lm_eval
@pytest.mark.slow
def test_eval_vs_lm_eval_tiny(tmp_path, tiny_llama):
    from benchmarks import bench_eval_vs_lm_eval

    from benchmarks import bench_greedy_identical, bench_peak_rss

    ctx = _ctx(tmp_path, shared={"base": str(tiny_llama)})
    r = bench_eval_vs_lm_eval.run(ctx)
    _well_formed(r, "eval_vs_lm_eval")
    same = r["detail"]["identical_generations"]
    assert same["compared"] == 2
    assert r["detail"]["evalkit"]["peak_rss_mb_median"] > 0
    # the RSS and identical-generation rows reuse these runs (nothing is run twice)
    rss, greedy = bench_peak_rss.run(ctx), bench_greedy_identical.run(ctx)
    _well_formed(rss, "peak_rss_vs_lm_eval")
    assert rss["ratio"] == pytest.approx(r["detail"]["evalkit"]["peak_rss_mb_median"]
                                         / r["detail"]["lm_eval"]["peak_rss_mb_median"], rel=1e-3)
    # a share may be 0 (random tiny models can disagree on every prompt), so not _well_formed's "> 0"
    assert greedy["name"] == "greedy_identical" and greedy["met"] is (same["share"] >= 0.95)
    assert greedy["detail"]["compared"] == 2 and greedy["value"] == pytest.approx(same["share"], abs=1e-4)


@needs_lm_eval
@pytest.mark.slow
def test_eval_full_vs_lm_eval_tiny(tmp_path, tiny_llama):
    from benchmarks import bench_eval_full_vs_lm_eval

    r = bench_eval_full_vs_lm_eval.run(_ctx(tmp_path, shared={"base": str(tiny_llama)}))
    _well_formed(r, "eval_full_vs_lm_eval")
    assert r["detail"]["identical_generations"]["compared"] == 4  # 2 English + 2 Korean prompts


@needs_lm_eval
@pytest.mark.slow
def test_compare3_and_warm_cache_tiny(tmp_path, tiny_llama):
    from benchmarks import bench_compare3_vs_lm_eval, bench_warm_cache

    ctx = _ctx(tmp_path, shared={"base": str(tiny_llama)})
    r = bench_compare3_vs_lm_eval.run(ctx)
    _well_formed(r, "compare3_vs_lm_eval")
    assert len(r["detail"]["lm_eval_runs"]) == 1 and len(r["detail"]["lm_eval_runs"][0]["wall_s"]) == 3
    w = bench_warm_cache.run(ctx)  # reuses compare3's cold/warm pairs
    _well_formed(w, "warm_cache")
    # a timing target belongs to the benchmark's own row, not to a unit test (it flips under load)
    assert w["ratio"] > 0


def test_lm_eval_benchmarks_skip_without_lm_eval(tmp_path, monkeypatch):
    from benchmarks import bench_compare3_vs_lm_eval, bench_eval_vs_lm_eval

    monkeypatch.setattr(bench_eval_vs_lm_eval, "lm_eval_available", lambda: "lm_eval is not installed")
    monkeypatch.setattr(bench_compare3_vs_lm_eval, "lm_eval_available", lambda: "lm_eval is not installed")
    for mod, name in ((bench_eval_vs_lm_eval, "eval_vs_lm_eval"), (bench_compare3_vs_lm_eval, "compare3_vs_lm_eval")):
        r = mod.run(_ctx(tmp_path))
        assert r["name"] == name and r["met"] is None and "not installed" in r["detail"]["skipped"]


# ------------------------------------------------------------------ runner plumbing


def test_measure_reports_wall_time_and_peak_rss(tmp_path):
    cmd = [sys.executable, "-c", "x = bytearray(64 * 2**20); print('ok')"]
    m = runner.measure(cmd, env=_ctx(tmp_path).env(), log_file=tmp_path / "log.txt")
    assert m.returncode == 0 and m.wall_s > 0
    assert m.peak_rss_mb >= 64
    assert (tmp_path / "log.txt").read_text().strip() == "ok"


def test_measure_raises_with_the_log_tail_on_failure(tmp_path):
    cmd = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    with pytest.raises(RuntimeError, match="exit 3"):
        runner.measure(cmd, env=_ctx(tmp_path).env(), log_file=tmp_path / "log.txt")


def test_alternate_swaps_order_and_takes_the_median_ratio():
    calls = []
    a_times, b_times = iter([1.0, 2.0, 3.0]), iter([2.0, 2.0, 2.0])

    def a(i):
        calls.append(("a", i))
        return next(a_times)

    def b(i):
        calls.append(("b", i))
        return next(b_times)

    res = runner.alternate(a, b, 3)
    assert calls == [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2)]
    assert res["ratios"] == [0.5, 1.0, 1.5] and res["ratio"] == 1.0


def test_save_merges_rows_writes_markdown_and_readme(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# B\n<!-- results:start -->\nold\n<!-- results:end -->\ntail\n", encoding="utf-8")
    out = tmp_path / "results"
    r1 = runner.row("rouge_vs_rouge_score", ratio=0.2, target="ratio ≤ 1.0", met=True, detail={"summary": "s1"})
    r2 = runner.row("warm_cache", ratio=0.5, target="ratio ≤ 0.05", met=False, detail={"summary": "s2"})
    runner.save([r1, r2], out, size="tiny", machine_info={"cpu": "x", "versions": {}}, readme=readme)
    r3 = runner.row("warm_cache", ratio=0.01, target="ratio ≤ 0.05", met=True, detail={"summary": "s3"})
    data = runner.save([r3], out, size="small", machine_info={"cpu": "x", "versions": {}}, readme=readme)
    assert [r["name"] for r in data["results"]] == ["rouge_vs_rouge_score", "warm_cache"]
    assert data["results"][1]["ratio"] == 0.01 and data["results"][1]["size"] == "small"
    md = (out / "latest.md").read_text(encoding="utf-8")
    # table rows follow runner.BENCHMARKS (warm_cache before rouge), whatever order they were saved in
    assert md.index("`warm_cache`") < md.index("`rouge_vs_rouge_score`") and "s3" in md and "s2" not in md
    text = readme.read_text(encoding="utf-8")
    assert "old" not in text and "s3" in text and text.endswith("tail\n")


def test_unknown_benchmark_suggests_a_name():
    with pytest.raises(SystemExit, match="Did you mean 'warm_cache'"):
        runner.benchmark_module("warm_cach")


def test_every_benchmark_module_declares_name_and_target():
    for name in runner.BENCHMARKS:
        mod = runner.benchmark_module(name)
        assert mod.NAME == name and mod.TARGET and callable(mod.run)


def test_audit_benchmark_tiny(tmp_path):
    from benchmarks import bench_audit

    r = bench_audit.run(_ctx(tmp_path))
    _well_formed(r, "audit_1e5")
    d = r["detail"]
    assert (d["train"], d["val"]) == (2000, 200) and d["brute_force"]["unequal"] == []
    assert 0 < d["brute_force"]["near"] < d["brute_force"]["checked"]  # both sides of the threshold checked
    assert r["met"] is None  # the target is judged at 10^5 only
