"""`evalkit score PREDICTIONS.jsonl --out DIR`: text metrics on predictions made anywhere.

No model is loaded. Each line: {"id", "prompt", "prediction", "reference"?}. With --train-data
(the training format of `evalkit train`), generations are also checked against the training
answers: verbatim / near-verbatim copies and novelty. Metrics that need a model (loss, MIA,
extraction) are absent. Writes DIR/results.json and DIR/report.html.

Example:
  evalkit score vllm_outputs.jsonl --train-data data/train.jsonl --out reports/vllm
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._options import add_threshold_options, thresholds_from


def register(sub):
    p = sub.add_parser("score", help="score predictions made elsewhere (no model needed)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("predictions", type=Path, help="JSONL of {id, prompt, prediction, reference?}")
    p.add_argument("--out", type=Path, required=True, help="output folder for results.json and report.html")
    p.add_argument("--train-data", type=Path, metavar="FILE", help="training conversations to check copying against")
    p.add_argument("--name", help="target name shown in reports (default: the file name)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    add_threshold_options(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..console import print_run
    from ..evaluate import score_predictions
    from ._options import write_run_outputs

    record = score_predictions(args.predictions, train_data=args.train_data, thresholds=thresholds_from(args),
                               seed=args.seed, name=args.name)
    write_run_outputs(record, args.out)
    print_run(record)
    print(f"wrote {args.out / 'results.json'} and {args.out / 'report.html'}")
    return 0
