"""`evalkit export lm-eval SUITE DIR`: write a held-out suite as an lm-evaluation-harness task.

Then: lm_eval --model hf --model_args pretrained=BASE,peft=ADAPTER --apply_chat_template
      --include_path DIR --tasks TASK --log_samples --output_path OUT
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub):
    p = sub.add_parser("export", help="export a prompt suite for another harness (lm-eval)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("format", choices=["lm-eval"], help="target harness")
    p.add_argument("suite", type=Path, help="prompt suite JSONL (prompt + reference)")
    p.add_argument("out", type=Path, help="folder for the task YAML, data copy and utils.py")
    p.add_argument("--task", help="task name (default: the suite file name)")
    p.add_argument("--max-gen-toks", type=int, default=96, help="lm-eval's generation budget per answer")
    p.add_argument("--until", action="append", help="stop string; repeatable (default: the model's EOS)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..export_lm_eval import export_lm_eval_task
    from ..outputs import check_out_dir

    check_out_dir(args.out, "out")

    path = export_lm_eval_task(args.suite, args.out, task=args.task, max_gen_toks=args.max_gen_toks,
                               until=args.until)
    print(f"wrote {path}; run: lm_eval --model hf --model_args pretrained=BASE,peft=ADAPTER "
          f"--apply_chat_template --include_path {args.out} --tasks {path.stem} --log_samples --output_path OUT")
    return 0
