"""Section 4: memorization: membership-inference ROC curves, novelty curves, flagged generations
beside the training answer they copy, and extraction probes.

AUCs in the ROC legends are the record's ``summary["mia_auc_<score>"]``; a curve whose AUC the record
does not carry is labelled without one (the report does not compute statistics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from ...records import RunRecord
from ..charts import N_COLOURS, LineChart, line_chart
from ..formatting import finite, fmt_num
from ..segments import Seg, lang_of, span_segments, text_segments
from .common import TargetHead

__all__ = ["MEMO_FLAGS", "FlaggedItem", "FlaggedGroup", "ExtractionRow", "ExtractionView", "MemorizationView",
           "build_memorization"]

MEMO_FLAGS = ("verbatim", "near_verbatim")  # flags listed in the memorization section


@dataclass(frozen=True)
class FlaggedItem:
    sample_id: str
    suite: str
    flags: tuple[str, ...]
    prompt: tuple[Seg, ...]
    prompt_lang: Optional[str]
    prediction: tuple[Seg, ...]
    pred_lang: Optional[str]
    train_id: str
    train: tuple[Seg, ...]
    train_lang: Optional[str]
    span_tokens: str
    located: bool  # the span was found in both texts (else shown unhighlighted, with a note)
    nearest_id: str
    nearest: tuple[Seg, ...]  # the nearest training answer when it differs from the span's source
    edit_distance: str


@dataclass(frozen=True)
class FlaggedGroup:
    target: TargetHead
    items: tuple[FlaggedItem, ...]  # empty in a sweep: the pager shows them two targets at a time
    n_samples: int
    n_flagged: int


@dataclass(frozen=True)
class ExtractionRow:
    id: str
    prompt: str
    prediction: tuple[Seg, ...]
    reference: tuple[Seg, ...]
    exact: bool
    edit_distance: str
    lang: Optional[str]


@dataclass(frozen=True)
class ExtractionView:
    target: TargetHead
    n_train: int
    n_train_exact: int
    train_mean_ed: str
    n_heldout: int
    n_heldout_exact: int
    heldout_mean_ed: str
    closest: tuple[ExtractionRow, ...]  # training prompts whose answers came back closest


@dataclass(frozen=True)
class MemorizationView:
    roc: tuple[tuple[TargetHead, LineChart], ...]
    novelty: Optional[LineChart]
    flagged: tuple[FlaggedGroup, ...]
    extraction: tuple[ExtractionView, ...]
    compact: bool  # many targets: the per-target charts and lists start collapsed

    @property
    def empty(self) -> bool:
        return not (self.roc or self.novelty or any(g.n_flagged for g in self.flagged) or self.extraction)


def _roc_chart(h: TargetHead, run: RunRecord) -> Optional[LineChart]:
    roc = run.curves.get("roc")
    if not isinstance(roc, Mapping):
        return None
    series = []
    for i, (score, pts) in enumerate(roc.items()):
        if not isinstance(pts, Mapping):
            continue
        auc = finite(run.summary.get(f"mia_auc_{score}"))
        label = f"{score} (AUC {fmt_num(auc)})" if auc is not None else str(score)
        series.append((label, i, False, list(pts.get("fpr") or []), list(pts.get("tpr") or [])))
    return line_chart(f"{h.name}: membership-inference ROC", series, x_label="false positive rate",
                      y_label="true positive rate", x_range=(0, 1), y_range=(0, 1), diagonal=True,
                      width=360, height=320)


def _novelty_chart(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]) -> Optional[LineChart]:
    series, refs = [], []
    for h in heads:
        nov = runs[h.name].curves.get("novelty")
        if not isinstance(nov, Mapping) or not nov.get("n"):
            continue
        ns = list(nov["n"])
        series.append((h.name, h.idx, False, ns, list(nov.get("prediction") or [])))
        ref = [finite(v) for v in (nov.get("reference") or [])]
        if ref and all(ref != r for _, r, _ in refs):
            refs.append((h, ref, ns))
    if not series:
        return None
    for h, ref, ns in refs:
        label = "human references" if len(refs) == 1 else f"human references ({h.name})"
        series.append((label, N_COLOURS - 1 if len(refs) == 1 else h.idx, True, ns, ref))
    return line_chart("Novelty: share of n-grams found in no training answer", series, x_label="n (n-gram length)",
                      y_label="novel share", y_range=(0, 1), integer_x=True, width=520, height=300)


def _flagged(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord], counts_only: bool) -> tuple[FlaggedGroup, ...]:
    groups = []
    for h in heads:
        run = runs[h.name]
        items = []
        n_flagged = 0
        for s in run.samples:
            flags = tuple(f for f in s.flags if f in MEMO_FLAGS)
            if not flags:
                continue
            n_flagged += 1
            if counts_only:
                continue
            m = s.memorization
            if m is None:
                items.append(FlaggedItem(s.id, s.suite, flags, text_segments(s.prompt), lang_of(s.prompt),
                                         text_segments(s.prediction), lang_of(s.prediction), "", (), None, "",
                                         False, "", (), ""))
                continue
            pred, ok_pred = span_segments(s.prediction, m.pred_start, m.span)
            train, ok_train = span_segments(m.train_answer, m.train_start, m.span)
            nearest: tuple[Seg, ...] = ()
            if m.nearest_answer and m.nearest_id != m.train_id:
                nearest = text_segments(m.nearest_answer)
            items.append(FlaggedItem(
                s.id, s.suite, flags, text_segments(s.prompt), lang_of(s.prompt), pred, lang_of(s.prediction),
                m.train_id, train, lang_of(m.train_answer), fmt_num(m.span_tokens), ok_pred and ok_train,
                m.nearest_id or "", nearest, fmt_num(m.edit_distance) if m.edit_distance is not None else ""))
        groups.append(FlaggedGroup(h, tuple(items), len(run.samples), n_flagged))
    return tuple(groups)


def _mean_ed(rows) -> str:
    vals = [v for v in (finite(e.edit_distance) for e in rows) if v is not None]
    return fmt_num(sum(vals) / len(vals)) if vals else "—"


def _extraction(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]) -> tuple[ExtractionView, ...]:
    out = []
    for h in heads:
        ex = runs[h.name].extraction
        if not ex:
            continue
        train = [e for e in ex if e.split == "train"]
        held = [e for e in ex if e.split != "train"]
        closest = sorted(train, key=lambda e: d if (d := finite(e.edit_distance)) is not None else math.inf)[:5]
        out.append(ExtractionView(
            h, len(train), sum(e.exact for e in train), _mean_ed(train), len(held), sum(e.exact for e in held),
            _mean_ed(held),
            tuple(ExtractionRow(e.id, e.prompt, text_segments(e.prediction), text_segments(e.reference), e.exact,
                                fmt_num(e.edit_distance), lang_of(e.prediction + e.reference)) for e in closest)))
    return tuple(out)


def build_memorization(heads: Sequence[TargetHead], runs: Mapping[str, RunRecord],
                       compact: bool = False) -> MemorizationView:
    roc = tuple((h, c) for h in heads if (c := _roc_chart(h, runs[h.name])) is not None)
    return MemorizationView(roc, _novelty_chart(heads, runs), _flagged(heads, runs, counts_only=compact),
                            _extraction(heads, runs), compact)
