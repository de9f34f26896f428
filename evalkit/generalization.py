"""Did what the adapter learned carry over to new prompts? Transfer of the loss gain, skeleton replay, data audit.

Three checks `evalkit eval` runs beside the memorization signals (docs/audit.md):

* **transfer**: the adapter's gain over the base model on validation answers,
  ``val_gain = base_val_loss - val_loss``, against its gain on the held-out references,
  ``heldout_gain = base_heldout_loss - heldout_loss`` (nats/token, token-weighted like the losses, on
  the same examples for both models), and ``transfer_gap = val_gain - heldout_gain``. Each with a 95%
  percentile bootstrap interval over examples (the two splits resampled independently for the gap).
  An adapter that gains on validation answers and *loses* on held-out prompts has learned its
  training distribution, not the task -- the seed's case, which a val - train loss gap near 0 hides.
* **skeleton replay**: the share of answers to held-out prompts whose skeleton (memorization/skeleton.py:
  slot values masked) is within 0.10 edit distance of a training answer's skeleton -- a training
  frame around new words, which neither the verbatim span nor the near-copy test sees. The same rate
  for the human references is the baseline (``reference_skeleton_replay_rate``).
* **data audit** (evalkit/audit.py) of the members, the validation split and the suites: its warnings
  become notices, and the two val-leak rates enter the summary so the verdict can say so.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from .audit import audit_data, catalog_names
from .data import Conversation, PromptItem
from .memorization.skeleton import SkeletonIndex
from .records import DataAudit, LossExample, Notice, Sample
from .stats import bootstrap_ci

__all__ = ["Figures", "transfer_figures", "skeleton_replay", "eval_audit"]

Figures = tuple[dict[str, float], dict[str, tuple[float, float]], dict[str, int]]  # summary, intervals, n


def _gain_arrays(losses: Sequence[LossExample], split: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [e for e in losses if e.split == split and e.base_nll is not None and e.n_tokens > 0
            and np.isfinite(e.nll) and np.isfinite(e.base_nll)]
    return (np.array([e.base_nll - e.nll for e in rows], dtype=float),
            np.array([e.n_tokens for e in rows], dtype=float))


def _weighted_boot(d: np.ndarray, w: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Token-weighted mean of d over n_boot resamples of the examples."""
    idx = rng.integers(0, len(d), size=(n_boot, len(d)))
    return (d[idx] * w[idx]).sum(axis=1) / w[idx].sum(axis=1)


def transfer_figures(losses: Sequence[LossExample], n_boot: int = 1000, seed: int = 0) -> Figures:
    """val_gain, heldout_gain and transfer_gap with intervals and n (absent when a split has no base loss)."""
    summary: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}
    n: dict[str, int] = {}
    rng = np.random.default_rng(seed)
    boots = {}
    for split in ("val", "heldout"):
        d, w = _gain_arrays(losses, split)
        if not len(d):
            continue
        name = f"{split}_gain"
        summary[name] = float((d * w).sum() / w.sum())
        boots[split] = _weighted_boot(d, w, n_boot, rng)
        lo, hi = np.percentile(boots[split], [2.5, 97.5])
        intervals[name] = (float(lo), float(hi))
        n[name] = int(len(d))
    if len(boots) == 2:
        summary["transfer_gap"] = summary["val_gain"] - summary["heldout_gain"]
        lo, hi = np.percentile(boots["val"] - boots["heldout"], [2.5, 97.5])
        intervals["transfer_gap"] = (float(lo), float(hi))
        n["transfer_gap"] = min(n["val_gain"], n["heldout_gain"])
    return summary, intervals, n


def skeleton_replay(samples: Sequence[Sample], members: Sequence[Conversation], catalog: Sequence[str] = (),
                    n_boot: int = 1000, seed: int = 0) -> tuple[tuple[Sample, ...], Figures]:
    """Flag ``skeleton_replay`` on samples whose answer frames a training answer; the rate for answers and refs."""
    index = SkeletonIndex.build([(c.id, c.answer) for c in members], catalog)
    hits = index.matches([s.prediction for s in samples])
    out = tuple(replace(s, flags=s.flags + ("skeleton_replay",),
                        metrics={**s.metrics, "skeleton_distance": float(m.distance)})
                if m is not None else s for s, m in zip(samples, hits))
    summary: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}
    n: dict[str, int] = {}
    if samples:
        flags = [1.0 if m is not None else 0.0 for m in hits]
        summary["skeleton_replay_rate"] = float(np.mean(flags))
        intervals["skeleton_replay_rate"] = bootstrap_ci(flags, n_boot=n_boot, seed=seed)
        n["skeleton_replay_rate"] = len(flags)
    refs = [s.reference for s in samples if s.reference]
    if refs:
        summary["reference_skeleton_replay_rate"] = float(np.mean([m is not None for m in index.matches(refs)]))
        n["reference_skeleton_replay_rate"] = len(refs)
    return out, (summary, intervals, n)


def eval_audit(members: Sequence[Conversation], val: Sequence[Conversation],
               prompt_items: Sequence[PromptItem]) -> tuple[DataAudit, tuple[Notice, ...], dict[str, float]]:
    """The audit of the data an evaluation uses: the record, its notices, and the summary keys the verdict reads."""
    by_suite: dict[str, list[PromptItem]] = {}
    for p in prompt_items:
        by_suite.setdefault(p.suite, []).append(p)
    audit = audit_data(members, val or None, list(by_suite.values()), catalog=catalog_names())
    # the audit's wall time is provenance, not a finding: a run record must be identical for identical work
    audit = replace(audit, runtime_s=None)
    keys = ("val_answer_near_dup_rate", "val_answer_skeleton_match_rate", "train_answer_template_share")
    return audit, tuple(audit.warnings), {k: audit.summary[k] for k in keys if k in audit.summary}

