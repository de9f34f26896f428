"""`evalkit audit TRAIN.jsonl [--val VAL.jsonl] [--suite SUITE.jsonl ...] --out DIR`: check the data, no model.

Is the validation split evidence of generalization? Are the held-out suites held out? Are the training
answers a few templates? Writes DIR/audit.json (docs/audit.md) and prints its warnings:

  val_leak           validation answers near-copy training answers: val loss is no evidence
  heldout_leak       a suite's prompts or references near-copy training ones
  templated_answers  most training answers follow a few answer skeletons

Exit 0 (warnings included), 2 on bad input. `evalkit train` and `evalkit eval` run the same audit.

Examples:
  evalkit audit benchmarks/eco/train.jsonl --val benchmarks/eco/val.jsonl --suite prompts/eco_heldout_en.jsonl --out reports/audit
  evalkit audit data/train.jsonl --val data/val.jsonl --catalog data/catalog.json --out reports/audit
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub):
    p = sub.add_parser("audit", help="check train / val / held-out data for leaks and templated answers",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("train", type=Path, help="training conversations (JSONL, the format of `evalkit train`)")
    p.add_argument("--val", type=Path, metavar="FILE", help="validation conversations")
    p.add_argument("--suite", action="append", type=Path, default=[], metavar="FILE",
                   help="held-out prompt suite (JSONL with prompt + reference); repeatable")
    p.add_argument("--catalog", type=Path, metavar="FILE",
                   help="catalog JSON whose challenge names are masked in answer skeletons "
                        "(default: the bundled eco catalog)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder for audit.json")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..audit import audit_files
    from ..records import save_record

    audit = audit_files(args.train, args.val, args.suite, args.catalog)
    save_record(audit, args.out / "audit.json")
    s = audit.summary
    parts = [f"{k} {s[k]:.3f}" for k in ("val_answer_near_dup_rate", "val_answer_exact_dup_rate",
                                          "val_prompt_near_dup_rate", "heldout_prompt_near_dup_rate",
                                          "train_answer_template_share", "train_answer_distinct_4") if k in s]
    print(f"audit of {audit.n.get('train')} training, {audit.n.get('val', 0)} validation and "
          f"{audit.n.get('heldout', 0)} held-out examples: " + ", ".join(parts))
    for w in audit.warnings:
        print(f"warning [{w.code}]: {w.message}")
    if not audit.warnings:
        print("no warnings")
    print(f"wrote {args.out / 'audit.json'}")
    return 0
