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

from ._options import add_json_option, add_threshold_options, thresholds_from


def register(sub):
    p = sub.add_parser("score", help="score predictions made elsewhere (no model needed)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("predictions", type=Path, help="JSONL of {id, prompt, prediction, reference?}")
    p.add_argument("--out", type=Path, required=True, help="output folder for results.json and report.html")
    p.add_argument("--train-data", type=Path, metavar="FILE", help="training conversations to check copying against")
    p.add_argument("--name", help="target name shown in reports (default: the file name)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    add_threshold_options(p)
    add_json_option(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..console import print_run, print_summary_json
    from ..evaluate import score_predictions
    from ..outputs import check_out_dir, write_run

    thresholds = thresholds_from(args)
    check_out_dir(args.out)  # before the work: a bad --out is found in a second, not after scoring
    record = score_predictions(args.predictions, train_data=args.train_data, thresholds=thresholds,
                               seed=args.seed, name=args.name)
    paths = write_run(record, args.out)
    print_run(record, to_stderr=args.json)
    if args.json:
        print_summary_json(record, paths)
    else:
        print(f"wrote {paths['results.json']} and {paths['report.html']}")
    return 0
