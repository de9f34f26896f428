"""Text metrics for a set of generations: ROUGE, novelty, diversity, defects and copying.

Shared by `evalkit eval` (generations from the engine) and `evalkit score` (predictions made
anywhere): no torch here. Produces per-sample :class:`~evalkit.records.Sample` rows, summary
values, bootstrap intervals (95%, over prompts), the n behind each, and the novelty curves.

Per suite: with more than one suite, ``rougeL``, ``novelty_gap_4``, ``verbatim_rate`` and
``near_verbatim_rate`` are also reported per suite as ``<metric>@<suite>`` (e.g.
``novelty_gap_4@eco_heldout_en``), each with its interval and n, so a verdict can judge the worst
suite: pooling languages dilutes copying that happens in one of them (an adapter trained on English
only copies on English prompts; the Korean ones halve the pooled figure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .memorization.near_copy import NEAR_VERBATIM_MAX_DISTANCE, NearCopyIndex
from .memorization.span_index import VERBATIM_MIN_TOKENS, SpanIndex, span_words, to_memorization
from .metrics.defects import DEFECT_FLAGS, defect_flags
from .metrics.diversity import distinct_n, mode_collapse
from .metrics.novelty import NoveltyIndex
from .metrics.registry import NOVELTY_NS, per_sample_metrics
from .metrics.rouge import ROUGE_TYPES, rouge_scores
from .records import Memorization, Sample
from .stats import bootstrap_ci, resampled_rows_ci

__all__ = ["TextItem", "TrainingAnswers", "TextScores", "score_texts"]


@dataclass(frozen=True)
class TextItem:
    """One generation to score (from the engine or a predictions file)."""

    id: str
    suite: str
    prompt: str
    prediction: str
    reference: Optional[str] = None
    n_tokens: Optional[int] = None
    hit_max_tokens: Optional[bool] = None
    tags: tuple[str, ...] = ()
    prompt_id: Optional[str] = None  # the prompt this answers (several samples of one prompt share it); default id


class TrainingAnswers:
    """The indexes over a target's training answers, built once and reused for every query."""

    def __init__(self, answers: Sequence[tuple[str, str]]):
        self.answers = list(answers)
        self.text_by_id = dict(self.answers)
        # Fine-tuning sets (up to ~10^7 tokens) get exact longest spans at every length (exact_short),
        # so the per-sample `longest_span` is exact; larger ones are exact from VERBATIM_MIN_TOKENS up.
        self.spans = SpanIndex.build(self.answers, exact_short=len(self.answers) <= 100_000)
        self.near = NearCopyIndex.build(self.answers)
        self.novelty = NoveltyIndex([text for _, text in self.answers])


@dataclass(frozen=True)
class TextScores:
    samples: tuple[Sample, ...]
    summary: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    curves: dict
    n: dict[str, int]
    nearest_answers: dict[str, str]  # the training answers samples name in nearest_id, once each


def _memorization(pred: str, match, nearest, train: TrainingAnswers) -> tuple[Optional[Memorization], list[str]]:
    """The flags and the memorization record of one prediction, from its span match and nearest answer."""
    flags: list[str] = []
    if match is not None and span_words(match.text) >= VERBATIM_MIN_TOKENS:  # words in every script
        flags.append("verbatim")
    if nearest is not None and nearest.distance <= NEAR_VERBATIM_MAX_DISTANCE:
        flags.append("near_verbatim")
    if not flags:
        return None, flags
    near_id = nearest.train_id if nearest else None
    near_text = train.text_by_id[near_id] if near_id else None
    near_d = float(nearest.distance) if nearest else None
    if match is None:  # a near copy without a long shared span (a short answer): show the nearest answer
        return Memorization(near_id, "", 0, 0, 0, near_text, near_id, near_text, near_d), flags
    return to_memorization(match, train.text_by_id[match.train_id], near_id, near_text, near_d), flags


def _mean(values: Sequence[float]) -> Optional[float]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else None


IMMEDIATE_STOP_TOKENS = 1  # an answer of at most this many tokens "ended at once"


def score_texts(items: Sequence[TextItem], train: Optional[TrainingAnswers], *, n_boot: int = 1000,
                seed: int = 0) -> TextScores:
    """Score generations against references and (when given) the training answers."""
    samples: list[Sample] = []
    per_metric: dict[str, list[float]] = {}
    nearest_answers: dict[str, str] = {}
    preds = [it.prediction for it in items]
    matches = train.spans.longest_spans(preds, min_tokens=1) if train is not None else [None] * len(items)
    nearests = train.near.nearest_many(preds) if train is not None else [None] * len(items)
    for item, match, nearest in zip(items, matches, nearests):
        metrics: dict[str, float] = {}
        if item.reference is not None:
            metrics.update(rouge_scores(item.prediction, item.reference))
            for spec in per_sample_metrics():  # registered per-answer metrics (evalkit/metrics/spec.py)
                value = spec.per_sample(item.prediction, item.reference)
                if value is not None:
                    metrics[spec.name] = float(value)
        flags = list(defect_flags(item.prediction, hit_max_tokens=item.hit_max_tokens))
        memo = None
        if train is not None:
            memo, copy_flags = _memorization(item.prediction, match, nearest, train)
            flags = copy_flags + flags
            metrics["longest_span"] = float(match.n_tokens) if match is not None else 0.0
            for n, share in train.novelty.novelty(item.prediction).items():
                if share is not None:
                    metrics[f"novelty_{n}"] = float(share)
        for k, v in metrics.items():
            per_metric.setdefault(k, []).append(v)
        near_id = near_d = near_exact = None
        if nearest is not None:  # the pager shows it for every answer
            near_id, near_d, near_exact = nearest.train_id, float(nearest.distance), bool(nearest.exact)
            nearest_answers.setdefault(near_id, train.answers[nearest.train_index][1])
        samples.append(Sample(id=item.id, suite=item.suite, prompt=item.prompt, prediction=item.prediction,
                              reference=item.reference, metrics=metrics, flags=tuple(flags), memorization=memo,
                              n_tokens=item.n_tokens, hit_max_tokens=item.hit_max_tokens, tags=item.tags,
                              nearest_id=near_id, nearest_distance=near_d, nearest_exact=near_exact))

    n = len(samples)
    summary: dict[str, float] = {"n_samples": float(n)}
    intervals: dict[str, tuple[float, float]] = {}
    counts: dict[str, int] = {}
    for spec in per_sample_metrics():
        vals = per_metric.get(spec.name, [])
        if vals:
            summary[spec.name] = float(np.mean(vals))
            intervals[spec.name], counts[spec.name] = bootstrap_ci(vals, n_boot=n_boot, seed=seed), len(vals)
    for name in ROUGE_TYPES:
        vals = per_metric.get(name, [])
        if vals:
            summary[name] = float(np.mean(vals))
            intervals[name] = bootstrap_ci(vals, n_boot=n_boot, seed=seed)
            counts[name] = len(vals)
    flag_names = list(DEFECT_FLAGS) + (["verbatim", "near_verbatim"] if train is not None else [])
    if all(s.hit_max_tokens is None for s in samples):
        flag_names.remove("truncated")  # predictions made elsewhere: whether they were cut is unknown
    for flag in flag_names:
        hits = [1.0 if flag in s.flags else 0.0 for s in samples]
        summary[f"{flag}_rate"] = float(np.mean(hits)) if n else 0.0
        counts[f"{flag}_rate"] = n
        if n:
            intervals[f"{flag}_rate"] = bootstrap_ci(hits, n_boot=n_boot, seed=seed)
    summary["distinct_1"] = distinct_n(preds, 1)
    summary["distinct_2"] = distinct_n(preds, 2)
    # several samples of one prompt answer the same prompt: they never count as collapse with each other
    collapse = mode_collapse(preds, ids=[f"{it.suite}/{it.prompt_id or it.id}" for it in items])
    summary["mode_collapse_rate"] = float(collapse.rate)
    counts["mode_collapse_rate"] = n
    lengths = [s.n_tokens for s in samples if s.n_tokens is not None]
    if lengths:
        summary["mean_new_tokens"] = float(np.mean(lengths))
        # answers that end at once (the end-of-turn token first or second): the sign of a chat template
        # that does not fit the model (verdict reason "template_mismatch")
        summary["immediate_stop_rate"] = float(np.mean([n <= IMMEDIATE_STOP_TOKENS for n in lengths]))

    curves: dict = {}
    if train is not None:
        if per_metric.get("longest_span"):
            summary["longest_span_mean"] = float(np.mean(per_metric["longest_span"]))
        pred_curve = train.novelty.corpus_novelty(preds)
        refs = [s.reference for s in samples if s.reference]
        ref_curve = train.novelty.corpus_novelty(refs) if refs else {}
        for k in NOVELTY_NS:
            if pred_curve.get(k) is not None:
                summary[f"novelty_{k}"] = float(pred_curve[k])
            if ref_curve.get(k) is not None:
                summary[f"reference_novelty_{k}"] = float(ref_curve[k])
        curves["novelty"] = {"n": list(NOVELTY_NS),
                             "prediction": [pred_curve.get(k) for k in NOVELTY_NS],
                             "reference": [ref_curve.get(k) for k in NOVELTY_NS]}
    suites = list(dict.fromkeys(s.suite for s in samples))
    groups = [("", list(range(n)))]
    if len(suites) > 1:
        groups += [(f"@{suite}", [i for i, s in enumerate(samples) if s.suite == suite]) for suite in suites]
    for suffix, idx in groups:
        part = _group_figures([samples[i] for i in idx], train, n_boot=n_boot, seed=seed, pooled=not suffix)
        for key, (value, interval, count) in part.items():
            summary[key + suffix] = value
            counts[key + suffix] = count
            if interval is not None:
                intervals[key + suffix] = interval
    return TextScores(tuple(samples), summary, intervals, curves, counts, nearest_answers)


_NOVELTY_GAP_N = 4


def _group_figures(samples: Sequence[Sample], train: Optional[TrainingAnswers], *, n_boot: int, seed: int,
                   pooled: bool) -> dict[str, tuple[float, Optional[tuple[float, float]], int]]:
    """novelty_gap_4 (pooled n-gram shares, interval over prompts) and, per suite, rougeL and the copy rates."""
    out: dict[str, tuple[float, Optional[tuple[float, float]], int]] = {}
    if not samples:
        return out
    if not pooled:
        vals = [s.metrics["rougeL"] for s in samples if "rougeL" in s.metrics]
        if vals:
            out["rougeL"] = (float(np.mean(vals)), bootstrap_ci(vals, n_boot=n_boot, seed=seed), len(vals))
        if train is not None:
            for flag in ("verbatim", "near_verbatim"):
                hits = [1.0 if flag in s.flags else 0.0 for s in samples]
                out[f"{flag}_rate"] = (float(np.mean(hits)), bootstrap_ci(hits, n_boot=n_boot, seed=seed), len(hits))
    with_ref = [s for s in samples if s.reference]
    if train is None or not with_ref:
        return out
    novel_p, total_p = train.novelty.counts([s.prediction for s in with_ref], _NOVELTY_GAP_N)
    novel_r, total_r = train.novelty.counts([s.reference for s in with_ref], _NOVELTY_GAP_N)
    if not total_p.sum() or not total_r.sum():
        return out
    value = float(novel_p.sum() / total_p.sum() - novel_r.sum() / total_r.sum())

    def gap(sums: np.ndarray) -> np.ndarray:  # columns: novel_p, total_p, novel_r, total_r
        with np.errstate(invalid="ignore", divide="ignore"):
            g = sums[:, 0] / sums[:, 1] - sums[:, 2] / sums[:, 3]
        return g[np.isfinite(g)] if np.isfinite(g).any() else np.array([value])

    interval = resampled_rows_ci([novel_p, total_p, novel_r, total_r], gap, n_boot=n_boot, seed=seed)
    out[f"novelty_gap_{_NOVELTY_GAP_N}"] = (value, interval, len(with_ref))
    return out
