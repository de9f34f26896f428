"""`evalkit train --config FILE --out DIR`: train one LoRA adapter, logging train and validation loss.

The config is YAML or TOML with the fields of docs/config.md. Every option below is an override of
the file, applied in this order: the file, then --set (in order), then the direct flags.
Values of --set are read as YAML: numbers, true/false, null, lists like [q_proj,v_proj].

The seed's config (Mistral-style modules, "almost full fine-tuning"), as configs/seed.yaml:

  r: 16
  lora_alpha: 32
  lora_dropout: 0.05
  bias: none
  task_type: CAUSAL_LM
  target_modules: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]

Writes DIR/adapter_model.safetensors + adapter_config.json (load with peft), DIR/training_log.jsonl
(step, epoch, train_loss, val_loss, learning_rate every eval_steps) and DIR/evalkit.json (provenance).
DIR is written all at once at the end; a failed or interrupted run leaves nothing behind. Rerunning
with the same config, data and base model finds DIR up to date and trains nothing.

Examples:
  evalkit train --config configs/seed.yaml --out runs/seed
  evalkit train --config configs/seed.yaml --out runs/qv-r8 --target-modules q_proj,v_proj --r 8 --lora-alpha 16
  evalkit train --out runs/quick --set max_steps=20 --set learning_rate=5e-5 --canaries 8
"""

from __future__ import annotations

import argparse
from pathlib import Path

# Direct flags: (flag, config field, type shown in --help, help)
_DIRECT = (
    ("--base", "base", "MODEL", "base model: 'default' (SmolLM2-135M-Instruct), a model folder or a .gguf file"),
    ("--r", "r", "N", "LoRA rank"),
    ("--lora-alpha", "lora_alpha", "N", "LoRA alpha (scale = alpha / r)"),
    ("--target-modules", "target_modules", "LIST",
     "comma-separated module names (q_proj,v_proj) or attention | all7 | all-linear"),
    ("--learning-rate", "learning_rate", "LR", "peak learning rate, e.g. 5e-5"),
    ("--epochs", "num_epochs", "N", "passes over the training data"),
    ("--max-steps", "max_steps", "N", "optimizer steps (overrides --epochs)"),
    ("--canaries", "canaries", "N", "plant N canary secrets into training answers (memorization probe)"),
)


def register(sub):
    p = sub.add_parser("train", help="train one LoRA adapter from a config file (train/val loss table)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, metavar="FILE", help="YAML or TOML config (default: built-in defaults)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder of the adapter")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override one config field, e.g. --set learning_rate=2e-5; repeatable")
    g = p.add_argument_group("shortcuts for --set")
    for flag, name, metavar, text in _DIRECT:
        g.add_argument(flag, dest=f"direct_{name}", metavar=metavar, help=text)
    p.add_argument("--chat-template-from-config", action="store_true",
                   help="use a chat_template found in the base model's config.json (transformers ignores it there); "
                        "the same option as eval and compare (config field chat_template_from_config)")
    p.add_argument("--overwrite", action="store_true", help="replace an adapter already in DIR (a different one)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (the loss table is still printed)")
    p.set_defaults(func=run)
    return p


def overrides_from(args) -> list[str]:
    """--set items, then the direct flags, as key=value strings."""
    items = list(args.overrides or [])
    for _flag, name, _m, _h in _DIRECT:
        value = getattr(args, f"direct_{name}", None)
        if value is not None:
            items.append(f"{name}={value}")
    if getattr(args, "chat_template_from_config", False):
        items.append("chat_template_from_config=true")
    return items


def run(args) -> int:
    from ..config import load_config
    from ..console import redrawn_bars
    from ..outputs import check_out_dir
    from ..runtime.train import train

    config = load_config(args.config, overrides_from(args))
    check_out_dir(args.out)  # a file in the way or no permission: found now, not after training
    result = train(config, args.out, overwrite=args.overwrite, progress=redrawn_bars())
    if not result.up_to_date:
        final = result.record.get("final") or {}
        tl, vl = final.get("train_loss"), final.get("val_loss")
        losses = ", ".join(s for s in (f"train loss {tl:.4f}" if tl is not None else "",
                                       f"val loss {vl:.4f}" if vl is not None else "") if s)
        print(f"adapter written to {args.out} in {result.runtime_s:.0f} s ({result.final_step} steps"
              + (f"; {losses}" if losses else "") + ")")
        print(f"  {args.out}/adapter_model.safetensors, adapter_config.json, training_log.jsonl, evalkit.json")
    else:
        print(f"adapter in {args.out}")
    return 0
