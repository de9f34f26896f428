"""Rendering (evalkit/report/render.py): escaping of hostile data, self-containment, size, the CLI."""

import dataclasses
import json
import re
import time
from html.parser import HTMLParser

import pytest

from evalkit.cli import main
from evalkit.comparison import compare_runs
from evalkit.gate import default_gate
from evalkit.records import save_record
from evalkit.report import render_report, write_report
from evalkit.report.render import CSP, script_json
from tests.fakes import make_run

EXTRA_HOSTILE = ("</script><script>alert(2)</script>", "<!--", "\u2028\u2029", "<svg onload=alert(3)>",
                 "\" onmouseover=\"alert(4)", "' autofocus onfocus='alert(5)")
HOSTILE_NAMES = ('base"\'<>', "cand</script><script>alert(6)</script>", "copy<img src=x onerror=alert(7)>")
BENIGN_NAMES = ("base", "cand", "copy")


class _Collector(HTMLParser):
    """(tag, sorted attribute names) of every element, attribute values, and raw text of <script> elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.pairs, self.values, self.scripts, self._in_script = set(), [], [], False

    def handle_starttag(self, tag, attrs):
        self.pairs.add((tag, tuple(sorted(a for a, _ in attrs))))
        self.values.extend((a, v or "") for a, v in attrs)
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def _parse(html):
    c = _Collector()
    c.feed(html)
    c.close()
    return c


def _spice(run, extra):
    """Append more hostile strings to every prompt, prediction, reference and training answer."""
    def s_(x):
        mem = x.memorization
        if mem is not None:
            mem = dataclasses.replace(mem, train_answer=mem.train_answer + " " + extra)
        return dataclasses.replace(x, prompt=x.prompt + " " + extra, prediction=x.prediction + " " + extra,
                                   reference=(x.reference or "") + " " + extra, memorization=mem,
                                   metrics={**x.metrics})
    return dataclasses.replace(run, samples=tuple(s_(x) for x in run.samples))


def _comparison(names, hostile):
    runs = [make_run("base", n=24, target_kind="base", hostile=hostile),
            make_run("cand", n=24, seed=1, rouge_shift=0.03, hostile=hostile),
            make_run("copy", n=24, seed=2, copy_rate=0.3, rouge_shift=-0.05, hostile=hostile,
                     defects={"escaped_newline": 0.1, "template_leak": 0.1})]
    if hostile:
        runs = [_spice(r, " ".join(EXTRA_HOSTILE)) for r in runs]
    else:  # same shape, harmless text of similar length
        runs = [_spice(r, "plain words here") for r in runs]
    return compare_runs(runs, names=list(names), gate=default_gate(), n_boot=100)


@pytest.fixture(scope="module")
def benign_html():
    return render_report(_comparison(BENIGN_NAMES, hostile=False))


@pytest.fixture(scope="module")
def hostile_html():
    return render_report(_comparison(HOSTILE_NAMES, hostile=True))


def test_hostile_input_creates_no_element_or_attribute(benign_html, hostile_html):
    benign, hostile = _parse(benign_html), _parse(hostile_html)
    assert hostile.pairs <= benign.pairs, sorted(hostile.pairs - benign.pairs)
    assert len(hostile.scripts) == len(benign.scripts) == 2  # the JSON block and report.js, nothing more
    for name, value in hostile.values:
        assert not name.startswith("on"), name
        assert "javascript:" not in value.lower(), (name, value)
    assert "<script>alert" not in hostile_html and "<img src=x" not in hostile_html
    assert "{{ 7*7 }}" in hostile_html  # data is never template source
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile_html  # shown, escaped


def test_hostile_names_survive_intact_in_the_json_block(hostile_html):
    block = _parse(hostile_html).scripts[0]
    assert "</" not in block and "<!--" not in block and "\u2028" not in block
    data = json.loads(block)
    assert data["targets"] == list(HOSTILE_NAMES) and data["baseline"] == HOSTILE_NAMES[0]


def test_script_json_escapes_every_breakout():
    text = str(script_json({"a": "</script><!--<script>&\u2028\u2029", "n": float("nan")}))
    assert not re.search(r"[<>&\u2028\u2029]", text)
    assert json.loads(text) == {"a": "</script><!--<script>&\u2028\u2029", "n": None}


def test_self_contained_no_external_reference(benign_html):
    parsed = _parse(benign_html)
    assert f'content="{CSP}"'.replace("'", "&#39;") in benign_html or CSP in benign_html
    for name, value in parsed.values:
        if name in ("src", "srcset", "action", "formaction", "poster", "data"):
            pytest.fail(f"external resource attribute {name}={value!r}")
        if name == "href":
            assert value.startswith("#"), value
    tags = {t for t, _ in parsed.pairs}
    assert not tags & {"link", "img", "iframe", "object", "embed", "base", "form", "audio", "video"}
    assert "@import" not in benign_html and "url(" not in benign_html


def test_sections_in_order(benign_html):
    ids = [m.group(1) for m in re.finditer(r'<section id="([a-z]+)"', benign_html)]
    assert ids == ["verdict", "metrics", "training", "memorization", "samples", "configs"]


def test_literal_backslash_n_marked_and_real_newline_kept():
    run = make_run("solo", n=4)
    s0 = dataclasses.replace(run.samples[0], prediction="첫 줄\\n둘째 줄\nthird line")
    html = render_report(dataclasses.replace(run, samples=(s0,) + run.samples[1:]))
    assert '첫 줄<mark class="esc">\\n</mark>둘째 줄\nthird line' in html
    assert 'lang="ko"' in html


def test_single_target_report_omits_comparison_parts():
    html = render_report(make_run("solo", n=5, kind="score"))
    assert "Δ " not in html and "CI gate" not in html
    assert 'data-filter="regress"' not in html and 'data-filter="flagged"' in html
    assert '<section id="training"' not in html  # no training log in a score run
    assert "No memorization data" not in html  # novelty curves are there


def _long(run, factor):
    """Answers about `factor` times longer (fakes' answers are short; real chat answers are not)."""
    samples = tuple(dataclasses.replace(s, prediction=" ".join([s.prediction] * factor),
                                        reference=" ".join([s.reference or ""] * factor)) for s in run.samples)
    return dataclasses.replace(run, samples=samples)


def test_200_prompts_3_targets_under_3_mb():
    runs = [make_run("base", n=200, target_kind="base"), make_run("gentle", n=200, seed=1, rouge_shift=0.03),
            make_run("seedlike", n=200, seed=2, copy_rate=0.3, rouge_shift=-0.05,
                     defects={"escaped_newline": 0.1})]
    runs = [_long(r, 4) for r in runs]  # ~600-character answers
    comp = compare_runs(runs, gate=default_gate(), n_boot=200)
    t = time.perf_counter()
    html = render_report(comp)
    elapsed = time.perf_counter() - t
    size = len(html.encode("utf-8"))
    print(f"200x3 report: {size / 1e6:.2f} MB, rendered in {elapsed:.2f} s")
    assert size < 3_000_000
    # each answer's text is in the page once per place it is shown, not again in the JSON block
    block = _parse(html).scripts[0]
    assert len(block) < 2000


def test_write_report_atomic_and_cli(tmp_path, capsys):
    base, cand = make_run("base", n=6, target_kind="base"), make_run("cand", n=6, seed=1)
    comp = compare_runs([base, cand], n_boot=50)
    out = write_report(comp, tmp_path / "a" / "report.html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left

    folder = tmp_path / "cmp"
    folder.mkdir()
    save_record(comp, folder / "comparison.json")
    save_record(cand, folder / "results.json")
    assert main(["report", str(folder)]) == 0
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "cand vs base" in html  # comparison.json wins over results.json
    assert main(["report", str(folder / "results.json"), "--out", str(tmp_path / "single.html")]) == 0
    assert "evalkit: cand (eval)" in (tmp_path / "single.html").read_text(encoding="utf-8")
    capsys.readouterr()

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "comparison.json" in err and "results.json" in err
    (empty / "results.json").write_text("{not json", encoding="utf-8")
    assert main(["report", str(empty)]) == 2
    assert "not readable as JSON" in capsys.readouterr().err


def test_minimal_record_renders_and_says_what_is_missing():
    from evalkit.records import SCHEMA_VERSION, RunRecord, Target, Verdict

    run = RunRecord(schema_version=SCHEMA_VERSION, kind="score", target=Target(name="empty", kind="predictions"),
                    summary={}, verdict=Verdict("ok"))
    html = render_report(run)
    assert "No summary metrics in this record." in html
    assert "No memorization data in this record" in html
    assert '<section id="samples"' not in html and '<section id="training"' not in html
    assert _parse(html).scripts[0] and json.loads(_parse(html).scripts[0])["n_samples"] == 0
