"""Two compares on one cache at once: identical records, and the work is shared, not done twice."""

from __future__ import annotations

import re

from .conftest import FAST, cache_entries, cli_env, stable, start_cli

_SUMMARY = re.compile(r"cache: (\d+) results reused, (\d+) computed, (\d+) computed by a concurrent run")


def test_two_concurrent_compares_share_the_work(adapter, data_args, tmp_path):
    cache = tmp_path / "cache"
    procs = []
    for name in ("a", "b"):
        argv = ["compare", "base", str(adapter), "--no-gate", "--out", str(tmp_path / name), "--cache-dir",
                str(cache), *data_args, *[a for a in FAST if a != "--no-progress"]]
        procs.append(start_cli(argv, cli_env(tmp_path / "ek", EVALKIT_PROGRESS_EVERY="0")))
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
    assert stable(tmp_path / "a" / "comparison.json") == stable(tmp_path / "b" / "comparison.json")
    total = cache_entries(cache / "cache.sqlite")  # every distinct generation and score, computed once
    counts = [tuple(map(int, _SUMMARY.search(err).groups())) for _, err in results]
    computed = [c[1] for c in counts]
    assert sum(computed) == total  # every distinct result computed once, by one of the two runs
    assert min(computed) < total  # the later run computed fewer than all: it reused the other's batches
    assert all(c[1] + c[2] <= total for c in counts)
    for _, err in results:  # a CI log: plain progress lines naming the target, no third-party noise
        assert "\r" not in err and "Loading weights" not in err and "FutureWarning" not in err
        assert re.search(r"evalkit: \[\d/2\] (base|light) · (generate|score)", err)
