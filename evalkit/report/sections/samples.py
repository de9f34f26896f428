"""Section 5: side by side.

A comparison of up to ``LIST_MAX`` targets lists every prompt with each target's answer (candidates
word-diffed against the baseline, their rougeL change from ``Delta.per_id``). A sweep pages through the
answers of any two targets chosen in the page, from a JSON block parsed only when the section is
first shown (18 targets x every answer as HTML would be several MB). Both show, for every answer, the
training answer it is closest to (``Sample.nearest_id`` / ``RunRecord.nearest_answers``, or for a record
written before those, ``Sample.memorization.nearest_*`` of copies) or say that none is recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from ...records import Comparison, Delta, Memorization, RunRecord, Sample
from ..formatting import fmt_num, sort_key
from ..segments import Seg, diff_segments, lang_of, locate_span, text_segments
from .common import TargetHead

__all__ = ["AnswerCell", "NearestView", "SampleRow", "SamplesView", "PairPager", "build_samples", "build_pager",
           "LIST_MAX", "QUALITY_METRIC"]

LIST_MAX = 4  # up to this many targets, every answer is on the page; more: the two-target pager
QUALITY_METRIC = "rougeL"  # the per-prompt change shown under each candidate answer
# Per-sample metrics worth a glance; the rest of Sample.metrics (rouge1/2/Lsum, other novelty_n)
# are in results.json.
SAMPLE_METRICS_FIRST = ("rougeL", "novelty_4", "longest_span", "heldout_nll")
_SAMPLE_METRICS_HIDDEN = re.compile(r"^(rouge1|rouge2|rougeLsum|novelty_[1-35-9])$")


@dataclass(frozen=True)
class NearestView:
    """The training answer a generation is closest to (by normalized edit distance)."""

    train_id: str
    segs: tuple[Seg, ...]
    lang: Optional[str]
    edit_distance: str
    exact: bool = True  # False: the nearest of the best-ranked candidates, not proven the nearest


@dataclass(frozen=True)
class AnswerCell:
    target: TargetHead
    present: bool
    segs: tuple[Seg, ...]
    lang: Optional[str]
    flags: tuple[str, ...]
    metrics: tuple[tuple[str, str], ...]
    delta: str  # rougeL change vs the baseline ("" for the baseline / no pair)
    delta_cls: str
    n_tokens: str
    same_as_baseline: bool
    nearest: Optional[NearestView] = None  # None: no nearest training answer recorded


@dataclass(frozen=True)
class SampleRow:
    idx: int
    id: str
    suite: str
    prompt: tuple[Seg, ...]
    prompt_lang: Optional[str]
    reference: Optional[tuple[Seg, ...]]
    reference_lang: Optional[str]
    answers: tuple[AnswerCell, ...]
    differ: bool
    flagged: bool
    regression: str  # data-reg: the most negative rougeL change over candidates ("" when none)


@dataclass(frozen=True)
class SamplesView:
    targets: tuple[TargetHead, ...]
    rows: tuple[SampleRow, ...]
    has_candidates: bool
    has_reference: bool
    n_differ: int
    n_flagged: int


@dataclass(frozen=True)
class PairPager:
    """The two-target pager: selectors, and the data its script reads (``data``, a JSON block)."""

    targets: tuple[TargetHead, ...]
    first: int  # indices of the two targets shown first
    second: int
    n_prompts: int
    data: dict[str, Any]


def _nearest(s: Sample, run: RunRecord) -> Optional[tuple[str, str, Optional[float], bool]]:
    """(train id, text, edit distance, proven nearest) of the closest training answer the record names.

    Every sample of a record written since the pager needed it names its nearest training answer
    (``Sample.nearest_id``, text in ``RunRecord.nearest_answers``); older records only for copies."""
    m: Optional[Memorization] = s.memorization
    if m is not None and m.nearest_id and m.nearest_answer is not None:
        return m.nearest_id, m.nearest_answer, m.edit_distance, True  # within 0.10: always exact
    if s.nearest_id is not None and s.nearest_id in run.nearest_answers:
        return s.nearest_id, run.nearest_answers[s.nearest_id], s.nearest_distance, s.nearest_exact is not False
    if m is not None and m.train_id and m.train_answer:  # only the span's source is recorded
        return m.train_id, m.train_answer, None, True
    return None


def _sample_metrics(s: Sample) -> tuple[tuple[str, str], ...]:
    keys = [k for k in SAMPLE_METRICS_FIRST if k in s.metrics]
    keys += sorted(k for k in s.metrics if k not in keys and not _SAMPLE_METRICS_HIDDEN.match(k))
    return tuple((k, fmt_num(s.metrics[k])) for k in keys)


def _by_key(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]):
    """Per target {(suite, id): sample}, and every (suite, id) in first-seen order."""
    per_target: list[dict[tuple[str, str], Sample]] = []
    order: dict[tuple[str, str], None] = {}
    for h in heads:
        by_key: dict[tuple[str, str], Sample] = {}
        for s in runs[h.name].samples:
            by_key.setdefault((s.suite, s.id), s)
            order.setdefault((s.suite, s.id))
        per_target.append(by_key)
    return per_target, list(order)


def _per_prompt(d: Optional[Delta], s: Sample) -> Optional[float]:
    if d is None:
        return None
    return d.per_id.get(f"{s.suite}/{s.id}", d.per_id.get(s.id))


def build_samples(comp: Optional[Comparison], heads: Sequence[TargetHead],
                  runs: Mapping[str, RunRecord]) -> Optional[SamplesView]:
    per_target, order = _by_key(heads, runs)
    if not order:
        return None
    comparing = comp is not None
    quality = {d.candidate: d for d in (comp.deltas if comp else ()) if d.metric == QUALITY_METRIC}
    base = per_target[0] if comparing else {}
    rows = []
    for idx, key in enumerate(order):
        first = next(t[key] for t in per_target if key in t)
        b = base.get(key)
        answers, changes = [], []
        for h, by_key in zip(heads, per_target):
            s = by_key.get(key)
            if s is None:
                answers.append(AnswerCell(h, False, (), None, (), (), "", "", "", False))
                continue
            delta, dcls, same = "", "", False
            if comparing and not h.is_baseline and b is not None:
                segs = diff_segments(b.prediction, s.prediction)
                same = s.prediction == b.prediction
                d = quality.get(h.name)
                change = _per_prompt(d, s)
                if change is not None:
                    changes.append(change)
                    delta = fmt_num(change, signed=True)
                    dcls = ("neutral" if change == 0 or d.higher_is_better is None
                            else "better" if (change > 0) == d.higher_is_better else "worse")
            else:
                segs = text_segments(s.prediction)
            near = _nearest(s, runs[h.name])
            nearest = (NearestView(near[0], text_segments(near[1]), lang_of(near[1]),
                                   fmt_num(near[2]) if near[2] is not None else "", near[3]) if near else None)
            answers.append(AnswerCell(h, True, segs, lang_of(s.prediction), tuple(s.flags), _sample_metrics(s),
                                      delta, dcls, fmt_num(s.n_tokens) if s.n_tokens is not None else "", same,
                                      nearest))
        preds = [by_key[key].prediction for by_key in per_target if key in by_key]
        reference = first.reference
        rows.append(SampleRow(
            idx, first.id, first.suite, text_segments(first.prompt), lang_of(first.prompt),
            text_segments(reference) if reference is not None else None, lang_of(reference),
            tuple(answers), comparing and len(set(preds)) > 1, any(a.flags for a in answers),
            sort_key(min(changes)) if changes else ""))
    return SamplesView(tuple(heads), tuple(rows), comparing and len(heads) > 1,
                       any(r.reference is not None for r in rows), sum(r.differ for r in rows),
                       sum(r.flagged for r in rows))


def _span(text: str, start: Optional[int], span: str) -> Optional[list[int]]:
    at = locate_span(text, start, span)
    return None if at is None else [at, at + len(span)]


def build_pager(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord], first: int = 0,
                second: int = 1) -> Optional[PairPager]:
    """The pager's data: prompts once, each target's answers per prompt, training answers once by id.

    An answer is {"p": text, "f": flags, "m": "metric value" pairs, "n": nearest training id or null,
    "d": its edit distance, "x": false when that is only the nearest of the best-ranked candidates, "s": [start, end] of the copied span in the answer, "t": the same in the
    nearest training answer (when the span comes from it)}. The script renders it with textContent.
    """
    per_target, order = _by_key(heads, runs)
    if not order or len(heads) < 2:
        return None
    prompts = []
    for key in order:
        s = next(t[key] for t in per_target if key in t)
        prompts.append({"id": s.id, "suite": s.suite, "prompt": s.prompt, "reference": s.reference})
    train: dict[str, str] = {}
    answers = []
    for h, by_key in zip(heads, per_target):
        col: list[Optional[dict[str, Any]]] = []
        for key in order:
            s = by_key.get(key)
            if s is None:
                col.append(None)
                continue
            a: dict[str, Any] = {"p": s.prediction, "f": list(s.flags),
                                 "m": [[k, v] for k, v in _sample_metrics(s)[:3]], "n": None}
            near = _nearest(s, runs[h.name])
            m = s.memorization
            if near is not None:
                train.setdefault(near[0], near[1])
                a["n"], a["d"] = near[0], fmt_num(near[2]) if near[2] is not None else ""
                if not near[3]:
                    a["x"] = False  # not proven the nearest
            if m is not None and m.span:
                a["s"] = _span(s.prediction, m.pred_start, m.span)
                if near is not None and near[0] == m.train_id:
                    a["t"] = _span(near[1], m.train_start, m.span)
            col.append(a)
        answers.append(col)
    data = {"targets": [h.name for h in heads], "prompts": prompts, "answers": answers, "train": train}
    return PairPager(tuple(heads), first, second, len(order), data)
