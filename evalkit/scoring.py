"""Text metrics for a set of generations: ROUGE, novelty, diversity, defects and copying.

Shared by `evalkit eval` (generations from the engine) and `evalkit score` (predictions made
anywhere): no torch here. Produces per-sample :class:`~evalkit.records.Sample` rows, summary
values, bootstrap intervals and the novelty curves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .memorization.near_copy import NEAR_VERBATIM_MAX_DISTANCE, NearCopyIndex
from .memorization.span_index import VERBATIM_MIN_TOKENS, SpanIndex, to_memorization
from .metrics.defects import DEFECT_FLAGS, defect_flags
from .metrics.diversity import distinct_n, mode_collapse
from .metrics.novelty import NoveltyIndex
from .metrics.registry import NOVELTY_NS, per_sample_metrics
from .metrics.rouge import ROUGE_TYPES, rouge_scores
from .records import Memorization, Sample
from .stats import bootstrap_ci

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


def _memorization(pred: str, match, nearest, train: TrainingAnswers) -> tuple[Optional[Memorization], list[str]]:
    """The flags and the memorization record of one prediction, from its span match and nearest answer."""
    flags: list[str] = []
    if match is not None and match.n_tokens >= VERBATIM_MIN_TOKENS:
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
        samples.append(Sample(id=item.id, suite=item.suite, prompt=item.prompt, prediction=item.prediction,
                              reference=item.reference, metrics=metrics, flags=tuple(flags), memorization=memo,
                              n_tokens=item.n_tokens, hit_max_tokens=item.hit_max_tokens, tags=item.tags))

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
    flag_names = list(DEFECT_FLAGS) + (["verbatim", "near_verbatim"] if train is not None else [])
    if all(s.hit_max_tokens is None for s in samples):
        flag_names.remove("truncated")  # predictions made elsewhere: whether they were cut is unknown
    for flag in flag_names:
        hits = [1.0 if flag in s.flags else 0.0 for s in samples]
        summary[f"{flag}_rate"] = float(np.mean(hits)) if n else 0.0
        if n and flag in ("verbatim", "near_verbatim"):
            intervals[f"{flag}_rate"] = bootstrap_ci(hits, n_boot=n_boot, seed=seed)
    summary["distinct_1"] = distinct_n(preds, 1)
    summary["distinct_2"] = distinct_n(preds, 2)
    summary["mode_collapse_rate"] = float(mode_collapse(preds, ids=[s.id for s in samples]).rate)
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
        if "novelty_4" in summary and "reference_novelty_4" in summary:
            summary["novelty_gap_4"] = summary["novelty_4"] - summary["reference_novelty_4"]
        curves["novelty"] = {"n": list(NOVELTY_NS),
                             "prediction": [pred_curve.get(k) for k in NOVELTY_NS],
                             "reference": [ref_curve.get(k) for k in NOVELTY_NS]}
    return TextScores(tuple(samples), summary, intervals, curves, counts)
