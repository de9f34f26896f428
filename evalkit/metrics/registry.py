"""Every summary metric evalkit reports, in one place: what it means, which way is better, how it is
aggregated, where the report groups it, whether it is a key metric, the n it needs to be judged, and the
function that computes it.

The gate, the verdict, the comparison, the console, summary.md and the report look metric names up here;
an unknown name gets a "Did you mean ...?" error.

**Adding a metric** = one function + its registration + one test. A per-answer text metric (a function
``f(prediction, reference) -> float | None``) registered with ``per_sample=f`` is computed for every
scored answer by evalkit/scoring.py, averaged into the summary with a bootstrap interval and its n,
paired per prompt in comparisons, grouped in the report, and can be judged by a verdict or gate rule --
nothing else to edit. Register it beside the function with ``@metric(...)`` (evalkit/metrics/spec.py):
every module of evalkit/metrics/ is imported here, so the new file is the only one that changes
(example: evalkit/metrics/length.py and tests/metrics/test_length.py). Metrics computed by
a pipeline step (losses, membership inference, ...) name that step in ``source``.

``paired`` says where per-prompt / per-example values for a paired test come from:
  "sample:<key>"  -> Sample.metrics[<key>] of each prompt (pairs by sample id)
  "flag:<name>"   -> 1.0 if the sample carries that flag else 0.0 (pairs by sample id)
  "loss:<split>"  -> LossExample.nll of that split (pairs by example id)
  None            -> a corpus-level figure with no per-prompt pairing (delta shown, no p-value)

``min_n`` (RunRecord.n[metric] below it: the verdict lists the metric as "not enough data", at least warn):
  MIA_MIN_N = 30 per class  -- Hanley-McNeil: at n=30 per class the 95% half-width of an AUC near 0.5 is
                               ~0.15, the distance from chance (0.5) to the warn threshold (0.6) and beyond;
                               fewer and a chance-level adapter crosses the warn line by noise.
  LOSS_MIN_N = 8 per split  -- below 8 examples a bootstrap interval of a mean difference is not an interval
                               (too few distinct resamples); the gap is also judged with its interval.
  RATE_MIN_N = 10 prompts   -- a copy rate over fewer than 10 answers moves in steps of more than 0.10,
                               larger than every threshold it is judged against.
  defect rates: 1 (a template leak is a bug at any n).
"""

from __future__ import annotations

import importlib
import pkgutil

from ..errors import GateError, did_you_mean
from .spec import GROUPS, LOSS_MIN_N, MIA_MIN_N, NOVELTY_NS, RATE_MIN_N, REGISTERED, MetricSpec

__all__ = ["MetricSpec", "METRICS", "get_metric", "metric_group", "key_metrics", "per_sample_metrics",
           "markdown_table", "NOVELTY_NS", "GROUPS"]



def _specs() -> list[MetricSpec]:
    s: list[MetricSpec] = []
    add = s.append
    text, mem, loss, mia = "evalkit.scoring", "evalkit.memorization", "evalkit.evaluate (loss pass)", \
        "evalkit.memorization.mia"
    # --- reference overlap (rouge.py)
    for name, what in [("rouge1", "unigram"), ("rouge2", "bigram"), ("rougeL", "longest common subsequence"),
                       ("rougeLsum", "summary-level LCS")]:
        add(MetricSpec(name, True, f"ROUGE F1 ({what}) against the reference answer", "quality",
                       paired=f"sample:{name}", key=1 if name == "rougeL" else 0, source=text))
    # --- novelty / diversity (novelty.py, diversity.py)
    for n in NOVELTY_NS:
        add(MetricSpec(f"novelty_{n}", True, f"share of generated {n}-grams found in no training answer",
                       "diversity", paired=f"sample:novelty_{n}", aggregation="pooled", key=7 if n == 4 else 0,
                       source=text))
        add(MetricSpec(f"reference_novelty_{n}", None,
                       f"share of reference-answer {n}-grams found in no training answer (human baseline)",
                       "diversity", aggregation="pooled", source=text))
    add(MetricSpec("novelty_gap_4", None,
                   "novelty_4 minus reference_novelty_4: negative means the model copies more than people",
                   "diversity", source=text))
    add(MetricSpec("distinct_1", True, "distinct unigrams / all unigrams over all outputs", "diversity", source=text))
    add(MetricSpec("distinct_2", True, "distinct bigrams / all bigrams over all outputs", "diversity", key=8,
                   source=text))
    add(MetricSpec("mode_collapse_rate", False,
                   "share of outputs that are (near-)identical to the output for a different prompt", "diversity",
                   min_n=RATE_MIN_N, source=text))
    # --- memorization (memorization/)
    add(MetricSpec("verbatim_rate", False, "share of outputs flagged verbatim (long span copied from a training answer)",
                   "memorization", paired="flag:verbatim", key=4, min_n=RATE_MIN_N, source=mem))
    add(MetricSpec("near_verbatim_rate", False,
                   "share of outputs within normalized edit distance 0.10 of a training answer", "memorization",
                   paired="flag:near_verbatim", key=5, min_n=RATE_MIN_N, source=mem))
    add(MetricSpec("longest_span_mean", False, "mean longest span (word tokens) shared with any training answer",
                   "memorization", paired="sample:longest_span", source=mem))
    add(MetricSpec("extraction_rate", False,
                   "share of training prompts whose training answer the model reproduces (near-)exactly",
                   "memorization", needs_model=True, key=6, min_n=RATE_MIN_N, source="evalkit.evaluate"))
    add(MetricSpec("heldout_extraction_rate", None,
                   "the same rate for held-out prompts against their references (control)", "memorization",
                   needs_model=True, source="evalkit.evaluate"))
    add(MetricSpec("mia_auc", False, "ROC AUC of the base-calibrated 'ref' membership score (the 'loss' score "
                   "when there is no base), training vs validation answers", "memorization",
                   needs_model=True, key=3, min_n=MIA_MIN_N, source=mia))
    add(MetricSpec("mia_tpr_at_1fpr", False, "TPR at 1% FPR of the same score", "memorization", needs_model=True,
                   min_n=MIA_MIN_N, source=mia))
    for sc in ("loss", "zlib", "ref", "minkpp"):
        add(MetricSpec(f"mia_auc_{sc}", False, f"ROC AUC of the {sc} membership score", "memorization",
                       needs_model=True, min_n=MIA_MIN_N, source=mia))
    add(MetricSpec("extraction_gap", False, "extraction_rate minus heldout_extraction_rate (extraction beyond "
                   "the control)", "memorization", needs_model=True, source="evalkit.evaluate"))
    add(MetricSpec("mia_tpr_at_0fp", False, "TPR at zero false positives of the same score (fewer than 300 "
                   "non-members: a 1% FPR cannot be bounded)", "memorization", needs_model=True, source=mia))
    add(MetricSpec("mia_auc_ezmia", False, "ROC AUC of the ezmia membership score", "memorization",
                   needs_model=True, min_n=MIA_MIN_N, source=mia))
    add(MetricSpec("mia_auc_base_null", None, "ROC AUC of the base model's own loss score on the same members and "
                   "non-members (the null: its interval should contain 0.5)", "memorization", needs_model=True,
                   source=mia))
    add(MetricSpec("mia_auc_blind", None, "ROC AUC of a model-free bag-of-words classifier (cross-validated) on the "
                   "same members and non-members: how separable the split is without any model", "memorization",
                   needs_model=True, source=mia))
    add(MetricSpec("canary_extraction_rate", False, "share of planted canaries the model reproduces",
                   "memorization", needs_model=True, source="evalkit.memorization.canaries"))
    add(MetricSpec("canary_exposure", False, "mean exposure (bits) of planted canaries", "memorization",
                   needs_model=True, source="evalkit.memorization.canaries"))
    # --- loss (loss.py)
    add(MetricSpec("train_loss", None, "mean NLL per assistant token on training examples", "loss",
                   paired="loss:train", needs_model=True, unit="nats/token", source=loss))
    add(MetricSpec("val_loss", False, "mean NLL per assistant token on validation examples", "loss",
                   paired="loss:val", needs_model=True, unit="nats/token", source=loss))
    add(MetricSpec("heldout_loss", False, "mean NLL per assistant token on held-out references", "loss",
                   paired="loss:heldout", needs_model=True, unit="nats/token", source=loss))
    add(MetricSpec("loss_gap", False, "val_loss minus train_loss: training answers against unseen answers of the "
                   "same distribution (heldout_loss minus train_loss when there is no validation split; "
                   "settings.loss_gap says which)", "loss", needs_model=True, unit="nats/token", key=2,
                   min_n=LOSS_MIN_N, source=loss))
    add(MetricSpec("train_ppl", None, "exp(train_loss)", "loss", needs_model=True, source=loss))
    add(MetricSpec("val_ppl", False, "exp(val_loss)", "loss", needs_model=True, source=loss))
    add(MetricSpec("heldout_ppl", False, "exp(heldout_loss)", "loss", needs_model=True, source=loss))
    add(MetricSpec("base_heldout_loss", None, "the base model's heldout_loss on the same examples", "loss",
                   needs_model=True, source=loss))
    add(MetricSpec("min_val_loss_step", None, "training step with the lowest validation loss (training_log.jsonl)",
                   "loss", source="evalkit.evaluate.training_log_summary"))
    add(MetricSpec("val_loss_rise", False,
                   "last logged validation loss minus its minimum (positive: it rose after the best step)", "loss",
                   source="evalkit.evaluate.training_log_summary"))
    # --- transfer, skeleton replay, data audit (generalization.py, audit.py; docs/audit.md)
    add(MetricSpec("val_gain", None, "base model's val loss minus the adapter's (gain on validation answers)",
                   needs_model=True, unit="nats/token", group="loss"))
    add(MetricSpec("heldout_gain", True, "base model's held-out loss minus the adapter's (gain on new prompts)",
                   needs_model=True, unit="nats/token", group="loss"))
    add(MetricSpec("transfer_gap", False, "val_gain minus heldout_gain: gain that did not carry over to new prompts",
                   needs_model=True, unit="nats/token", group="loss"))
    add(MetricSpec("skeleton_replay_rate", False,
                   "share of outputs whose skeleton (slot values masked) is within 0.10 of a training answer's",
                   paired="flag:skeleton_replay", needs_model=True, group="memorization",
                   min_n=RATE_MIN_N))
    add(MetricSpec("reference_skeleton_replay_rate", None, "the same share for the human references (baseline)",
                   needs_model=True, group="memorization"))
    add(MetricSpec("val_answer_near_dup_rate", None,
                   "data audit: share of validation answers within edit distance 0.10 of a training answer",
                   source="evalkit.audit"))
    add(MetricSpec("val_answer_skeleton_match_rate", None,
                   "data audit: share of validation answers sharing a training answer's skeleton",
                   source="evalkit.audit"))
    add(MetricSpec("train_answer_template_share", None,
                   "data audit: share of training answers covered by the 10 most common shared skeletons",
                   source="evalkit.audit"))
    # --- output defects (defects.py)
    for flag in ("escaped_newline", "template_leak", "empty", "truncated", "repetition"):
        add(MetricSpec(f"{flag}_rate", False, f"share of outputs flagged {flag}", "defects", paired=f"flag:{flag}",
                       min_n=1, source=text))
    add(MetricSpec("mean_new_tokens", None, "mean generated tokens per output", "defects", needs_model=True,
                   source=text))
    add(MetricSpec("immediate_stop_rate", False, "share of outputs that end at once (at most 1 token before the "
                   "end-of-turn token)", "defects", needs_model=True, min_n=1, source=text))
    add(MetricSpec("n_samples", None, "number of scored prompts", aggregation="count", source=text))
    return s


def _discovered() -> list[MetricSpec]:
    """Metrics registered with ``@metric(...)`` beside their function in any module of evalkit/metrics/."""
    for mod in pkgutil.iter_modules(importlib.import_module(__package__).__path__):
        if mod.name not in ("registry", "spec"):
            importlib.import_module(f"{__package__}.{mod.name}")
    return list(REGISTERED)


METRICS: dict[str, MetricSpec] = {m.name: m for m in _specs() + _discovered()}


def metric_group(name: str) -> str:
    """The report group of a summary metric ("other" when unregistered)."""
    spec = METRICS.get(name)
    return spec.group if spec else "other"


def key_metrics() -> tuple[str, ...]:
    return tuple(sorted((m for m, spec in METRICS.items() if spec.key), key=lambda m: METRICS[m].key))


def per_sample_metrics() -> tuple[MetricSpec, ...]:
    return tuple(spec for spec in METRICS.values() if spec.per_sample is not None)


def get_metric(name: str) -> MetricSpec:
    """The spec of ``name``; a per-suite name ``<metric>@<suite>`` (scoring.py) has its metric's spec."""
    base, at, suite = name.partition("@")
    if at and suite and base in METRICS:
        return METRICS[base]
    try:
        return METRICS[name]
    except KeyError:
        raise GateError(f"unknown metric '{name}'.{did_you_mean(name, METRICS)} "
                        f"Known metrics are listed in docs/metrics.md") from None


def markdown_table() -> str:
    """Every metric as a Markdown table (``python -m evalkit.metrics.registry``)."""
    arrow = {True: "higher", False: "lower", None: "—"}
    rows = [f"| `{m.name}` | {m.group} | {arrow[m.higher_is_better]} | {m.min_n or ''} | "
            f"{'key ' + str(m.key) if m.key else ''} | {m.description} |" for m in METRICS.values()]
    return "\n".join(["| metric | group | better | min n | key | description |", "|---|---|---|---|---|---|", *rows])


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table())
