"""The HTML report's golden file: the standard comparison (tests/fakes.py) with one candidate carrying
reasons of every status, a notice, a data audit and retention results.

Volatile fields are scrubbed before rendering (created_at, versions, paths, durations, hashes), and
the inlined report.css / report.js are replaced by placeholders (they are package files, not output).
On mismatch the actual HTML is saved under tests/_failed_golden/; EVALKIT_REGEN_GOLDEN=1 rewrites it.
"""

import dataclasses
import re

from evalkit.records import Comparison, from_dict, to_dict
from evalkit.report import render_report
from tests.fakes import assert_golden, scrub, standard_comparison
from tests.report.sweeps import lm_eval_entry, with_uncertainty

HASH_KEYS = frozenset({"adapter_hash", "base_hash", "data_hash", "sha256"})


def _scrub_hashes(obj):
    if isinstance(obj, dict):
        return {k: ("<hash>" if k in HASH_KEYS and v is not None else _scrub_hashes(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub_hashes(v) for v in obj]
    return obj


def golden_comparison() -> Comparison:
    comp = standard_comparison()
    runs = dict(comp.runs)
    runs["seedlike"] = with_uncertainty(runs["seedlike"])
    runs["base"] = dataclasses.replace(runs["base"], lm_eval=lm_eval_entry(0.64))
    runs["gentle"] = dataclasses.replace(runs["gentle"], lm_eval=lm_eval_entry(0.63))
    comp = dataclasses.replace(comp, runs=runs)
    return from_dict(Comparison, _scrub_hashes(scrub(to_dict(comp))))


def scrub_html(html: str) -> str:
    html = re.sub(r"<style>\n.*?\n</style>", "<style>/* report.css */</style>", html, count=1, flags=re.S)
    html = re.sub(r"<script>\n.*?\n</script>", "<script>/* report.js */</script>", html, count=1, flags=re.S)
    return html


def test_report_html_golden():
    assert_golden("report.html", scrub_html(render_report(golden_comparison())))


def test_golden_scrubbing_leaves_nothing_volatile():
    html = scrub_html(render_report(golden_comparison()))
    assert not re.search(r"[0-9a-f]{64}", html)  # no sha256
    assert "/tmp/" not in html and not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", html)  # no path, no timestamp
    assert "<style>/* report.css */</style>" in html and "<script>/* report.js */</script>" in html
