"""Synthetic sweeps and records carrying the verdict-uncertainty / audit / retention fields, for the
report tests. Built from tests.fakes.make_run: no model, deterministic."""

from __future__ import annotations

import dataclasses

from evalkit.comparison import compare_runs
from evalkit.records import DataAudit, Notice, Reason, RunRecord
from tests.fakes import make_run

AUDIT = DataAudit(
    schema_version=1,
    summary={"val_answer_exact_dup_rate": 0.0, "val_answer_near_dup_rate": 0.92, "val_prompt_near_dup_rate": 0.4,
             "heldout_prompt_near_dup_rate": 0.05, "train_answer_distinct_4": 0.31, "train_answer_template_share": 0.88},
    n={"train": 160, "val": 40},
    suites={"eco_heldout_en": {"n": 18, "heldout_prompt_near_dup_rate": 0.0},
            "eco_heldout_ko": {"n": 6, "heldout_prompt_near_dup_rate": 0.05}},
    warnings=(Notice("val_leak", "92% of validation answers near-copy a training answer: validation loss is no "
                                 "evidence of generalization"),
              Notice("templated_answers", "the 10 most common answer skeletons cover 88% of training answers")),
    runtime_s=0.4,
)


def lm_eval_entry(acc: float, n: int = 100) -> dict:
    """RunRecord.lm_eval as evalkit writes it (records.LmEvalTask; task values only, no documents)."""
    from evalkit.records import LmEvalTask

    se = (acc * (1 - acc) / n) ** 0.5
    return {"evalkit_general": LmEvalTask(metrics={"acc": acc}, stderr={"acc": round(se, 6)}, n=n,
                                          higher_is_better={"acc": True})}


def with_uncertainty(run: RunRecord) -> RunRecord:
    """The run with one reason of each status, a notice, an audit and retention results."""
    reasons = (
        Reason("mia", "overfit", "membership inference separates training answers", metric="mia_auc", value=0.81,
               threshold=0.75, ci_low=0.77, ci_high=0.86, n=100, status="crossed"),
        Reason("loss_gap", "warn", "the loss gap may exceed its threshold", metric="loss_gap_val", value=0.52,
               threshold=0.5, ci_low=0.31, ci_high=0.74, n=60, status="inconclusive"),
        Reason("mia_small", "warn", "too few members to judge membership inference", metric="mia_auc", value=0.766,
               threshold=0.75, ci_low=0.48, ci_high=0.95, n=8, status="not_enough_data"),
        Reason("canary", "warn", "canary extraction was not measured", metric="canary_extraction_rate",
               status="not_measured"),
    )
    return dataclasses.replace(
        run, verdict=dataclasses.replace(run.verdict, level="overfit", reasons=reasons),
        notices=(Notice("membership_override", "the training file's sha256 differs from evalkit.json; the "
                                               "membership check was overridden with --allow-membership-mismatch"),),
        audit=AUDIT, lm_eval=lm_eval_entry(0.61), n={"mia_auc": 100, "rougeL": len(run.samples)})


def sweep_runs(n_targets: int = 18, n: int = 200) -> list[RunRecord]:
    """A base model and n_targets - 1 adapters of rising memorization (copy rate) and mixed quality;
    the highest-rougeL adapter (lr12) has a warn verdict, so the pick must skip it."""
    runs = [make_run("base", n=n, target_kind="base")]
    for i in range(1, n_targets):
        copy = (0.0, 0.01, 0.03, 0.08, 0.15, 0.25)[i % 6]
        shift = (0.02, 0.05, -0.01, 0.04, 0.0, 0.06, 0.03)[i % 7]
        defects = {"repetition": 0.03} if i in (6, 12) else None  # two variants get a warn verdict
        runs.append(make_run(f"lr{i:02d}_qv_r{8 * (1 + i % 3)}", n=n, seed=i, copy_rate=copy, rouge_shift=shift,
                             defects=defects))
    return runs


def sweep_comparison(n_targets: int = 18, n: int = 200, n_boot: int = 200):
    return compare_runs(sweep_runs(n_targets, n), n_boot=n_boot, provenance={"command": "evalkit compare (fake)"})
