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


def _generalization_reasons(summary: Mapping[str, float], intervals: Mapping[str, tuple[float, float]],
                            th: Thresholds) -> list[Reason]:
    """The data audit's val leak, the transfer of the gain to held-out prompts, skeleton replay (docs/audit.md)."""
    reasons: list[Reason] = []

    def ci(metric: str) -> tuple[Optional[float], Optional[float]]:
        lo_hi = intervals.get(metric)
        return (float(lo_hi[0]), float(lo_hi[1])) if lo_hi else (None, None)

    def held_out_evidence() -> str:
        parts = []
        for m in ("heldout_gain", "skeleton_replay_rate", "near_verbatim_rate"):
            if m in summary:
                lo, hi = ci(m)
                parts.append(f"{m} = {_fmt(summary[m])}" + (f" [{_fmt(lo)}, {_fmt(hi)}]" if lo is not None else ""))
        return "; ".join(parts) or "none measured"

    near, skel = summary.get("val_answer_near_dup_rate"), summary.get("val_answer_skeleton_match_rate")
    if (near is not None and near >= th.val_leak_near_dup_rate_warn) or \
            (skel is not None and skel >= th.val_leak_skeleton_match_rate_warn):
        metric = "val_answer_near_dup_rate" if near is not None and near >= th.val_leak_near_dup_rate_warn \
            else "val_answer_skeleton_match_rate"
        limit = th.val_leak_near_dup_rate_warn if metric == "val_answer_near_dup_rate" \
            else th.val_leak_skeleton_match_rate_warn
        reasons.append(Reason("val_leak", "warn",
                              f"the validation split leaks: {metric} = {_fmt(summary[metric])} (>= {_fmt(limit)}) "
                              "of validation answers near-copy (or share the skeleton of) training answers, so the "
                              "val-based loss gap and membership inference are no evidence of generalization; "
                              f"held-out evidence decides: {held_out_evidence()}",
                              metric, float(summary[metric]), float(limit)))
    gain, val_gain = summary.get("heldout_gain"), summary.get("val_gain")
    if gain is not None and val_gain is not None and val_gain > 0:
        lo, hi = ci("heldout_gain")
        for level, limit in (("overfit", th.heldout_gain_overfit), ("warn", th.heldout_gain_warn)):
            if gain < limit:
                status = "crossed" if hi is None or hi < limit else "inconclusive"
                reasons.append(Reason("transfer", level if status == "crossed" else "warn",
                                      f"the adapter gains {_fmt(val_gain)} nats/token over the base model on "
                                      f"validation answers but heldout_gain = {_fmt(gain)} (< {_fmt(limit)}) on "
                                      "held-out references: it learned its training distribution, not the task",
                                      "heldout_gain", float(gain), float(limit), lo, hi,
                                      status=status))
                break
    rate = summary.get("skeleton_replay_rate")
    if rate is not None:
        lo, hi = ci("skeleton_replay_rate")
        for level, limit in (("overfit", th.skeleton_replay_rate_overfit), ("warn", th.skeleton_replay_rate_warn)):
            if rate > limit:
                reasons.append(Reason("skeleton_replay", level,
                                      f"answers to new prompts put new words into a training answer's frame: "
                                      f"skeleton_replay_rate = {_fmt(rate)} (> {_fmt(limit)})",
                                      "skeleton_replay_rate", float(rate), float(limit), lo, hi))
                break
    return reasons


def judge(summary: Mapping[str, float], th: Optional[Thresholds] = None,
          intervals: Optional[Mapping[str, tuple[float, float]]] = None) -> Verdict:
    th = th or Thresholds()
    reasons: list[Reason] = _generalization_reasons(summary, intervals or {}, th)

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

    stops = [(summary[m], m) for m in ("empty_rate", "immediate_stop_rate") if summary.get(m) is not None]
    if stops:
        value, metric = max(stops)
        if value >= th.template_mismatch_rate_warn:
            reasons.append(Reason("template_mismatch", "warn",
                                  f"most answers are empty or end at once ({metric} = {_fmt(value)}): the chat "
                                  "template likely does not fit the model -- check the template in the report's "
                                  "provenance, and --chat-template-from-config", metric, float(value),
                                  float(th.template_mismatch_rate_warn)))
    level = "overfit" if any(r.level == "overfit" for r in reasons) else "warn" if reasons else "ok"
    order = {"overfit": 0, "warn": 1}
    return Verdict(level, tuple(sorted(reasons, key=lambda r: order[r.level])))
