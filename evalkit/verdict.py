"""Turn a target's summary into ok / warn / overfit, every reason spelled out.

Reads only summary numbers (so `evalkit gate`/`report` can re-derive it from a stored record);
thresholds live in evalkit/thresholds.py.
"""

from __future__ import annotations

from typing import Mapping, Optional

from .records import Reason, Verdict
from .thresholds import Thresholds

__all__ = ["judge"]


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def judge(summary: Mapping[str, float], th: Optional[Thresholds] = None) -> Verdict:
    th = th or Thresholds()
    reasons: list[Reason] = []

    def above(metric: str, warn: Optional[float], overfit: Optional[float], what: str, strict: bool = True) -> None:
        value = summary.get(metric)
        if value is None:
            return
        for level, limit in (("overfit", overfit), ("warn", warn)):
            if limit is None:
                continue
            crossed = value > limit if strict else value >= limit
            if crossed:
                reasons.append(Reason(metric, level, f"{what}: {metric} = {_fmt(value)} (> {_fmt(limit)})",
                                      metric, float(value), float(limit)))
                return

    above("loss_gap", th.loss_gap_warn, th.loss_gap_overfit,
          "held-out loss is well above training loss (nats/token)")
    above("val_loss_rise", th.val_loss_rise_warn, None,
          "validation loss rose after its best step; training went past the minimum")
    above("mia_auc", th.mia_auc_warn, th.mia_auc_overfit,
          "training answers are distinguishable from unseen ones by likelihood (membership inference)")
    above("verbatim_rate", th.verbatim_rate_warn, th.verbatim_rate_overfit,
          "answers to new prompts copy long spans of training answers")
    above("near_verbatim_rate", th.near_verbatim_rate_warn, th.near_verbatim_rate_overfit,
          "answers to new prompts are near-copies of training answers")
    above("extraction_rate", th.extraction_rate_warn, th.extraction_rate_overfit,
          "training prompts make the model replay its training answers")
    above("mode_collapse_rate", th.mode_collapse_warn, th.mode_collapse_overfit,
          "different prompts get the same answer")
    above("canary_extraction_rate", None, th.canary_extraction_rate_overfit,
          "planted canary secrets come back out of the model")
    gap = summary.get("novelty_gap_4")
    if gap is not None:
        for level, limit in (("overfit", th.novelty_gap_overfit), ("warn", th.novelty_gap_warn)):
            if gap < limit:
                reasons.append(Reason("novelty_gap_4", level,
                                      f"answers reuse training 4-grams more than human references do: "
                                      f"novelty_gap_4 = {_fmt(gap)} (< {_fmt(limit)})",
                                      "novelty_gap_4", float(gap), float(limit)))
                break
    for flag, limit in (("template_leak", th.template_leak_rate_warn), ("escaped_newline", th.escaped_newline_rate_warn),
                        ("empty", th.empty_rate_warn), ("repetition", th.repetition_rate_warn),
                        ("truncated", th.truncated_rate_warn)):
        above(f"{flag}_rate", limit, None, f"output defect '{flag}'")

    level = "overfit" if any(r.level == "overfit" for r in reasons) else "warn" if reasons else "ok"
    order = {"overfit": 0, "warn": 1}
    return Verdict(level, tuple(sorted(reasons, key=lambda r: order[r.level])))
