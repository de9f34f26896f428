"""Batched chat generation with a small explicit decoding loop.

Why not ``model.generate``: the loop here gives every (prompt, sample) row its own random generator,
seeded from the run seed, the prompt and the sample index, so a sampled answer does not depend on which
other prompts share its batch — which is what lets the result cache (evalkit/cache.py) store and reuse
answers item by item. Greedy decoding is batch-independent too: prompts are LEFT-padded with an attention
mask and position ids counted from the first real token, so padding changes nothing but float rounding.

Rows stop at any end-of-turn token (:func:`evalkit.runtime.chat_templates.end_of_turn_ids`); the stop token is not
part of the text. ``hit_max_tokens`` marks answers cut off by ``max_new_tokens``.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from typing import Callable, Optional

from .. import defaults
from ..errors import ModelError
from .chat_templates import encode_prompt, end_of_turn_ids

__all__ = ["Generation", "generate", "row_seed", "decode_answer"]


@dataclass(frozen=True)
class Generation:
    text: str  # decoded with skip_special_tokens=True, stripped
    n_tokens: int  # tokens generated before the stop token
    hit_max_tokens: bool  # no stop token within max_new_tokens (the answer is cut off)


def row_seed(seed: int, prompt_ids: list[int], sample: int) -> int:
    """The seed of one (prompt, sample) row: independent of batch composition and order."""
    h = hashlib.sha256(f"{seed}|{sample}|{','.join(map(str, prompt_ids))}".encode()).digest()
    return int.from_bytes(h[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def decode_answer(tokenizer, ids: list[int], cut: bool) -> str:
    """The text of generated ids; an answer cut at max_new_tokens loses a trailing partial character.

    Byte-level tokenizers split one character (a Korean syllable is 3 UTF-8 bytes) over several tokens;
    cut in the middle, the incomplete bytes decode to U+FFFD at the very end. Only there, and only for a
    cut answer, they are dropped: the complete characters before them are kept.
    """
    text = tokenizer.decode(ids, skip_special_tokens=True)
    if cut:
        text = text.rstrip("\ufffd")
    return text.strip()


def _accepts(model, name: str) -> bool:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return name in inspect.signature(inner.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def _top_p_filter(probs, top_p: float):
    """Zero the tail of each row outside the smallest set with cumulative probability >= top_p."""
    import torch

    if top_p >= 1.0:
        return probs
    sorted_p, order = torch.sort(probs, descending=True, dim=-1)
    cum = sorted_p.cumsum(-1)
    drop = (cum - sorted_p) > top_p  # keep the token that crosses top_p
    sorted_p = sorted_p.masked_fill(drop, 0.0)
    return torch.zeros_like(probs).scatter(-1, order, sorted_p)


def _generate_batch(model, rows: list[list[int]], seeds: list[int], *, pad_id: int, stop_ids: list[int],
                    max_new_tokens: int, do_sample: bool, temperature: float,
                    top_p: float) -> list[tuple[list[int], bool]]:
    """Decode one left-padded batch; returns (generated ids before the stop token, stopped) per row."""
    import torch

    device = next(model.parameters()).device
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    stop = torch.tensor(stop_ids, dtype=torch.long, device=device)
    gens = [torch.Generator(device=device).manual_seed(s) for s in seeds] if do_sample else None
    extra = {"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}
    # transformers >= 5.2x names the KV cache argument `cache` (`past_key_values` is deprecated)
    cache_arg = "cache" if _accepts(model, "cache") else "past_key_values"

    # Tokens stay on the device until the end: reading them row by row every step costs one host sync
    # per row per step, which on a GPU dominates the decode step. Which rows have stopped is checked
    # every step on the CPU (free) and every 8 steps on an accelerator (a few wasted steps); stopped rows
    # are then dropped from the batch and its KV cache, so the remaining rows decode at a smaller batch
    # (half of a typical batch of 96-token answers stops early: ~10% fewer row-steps).
    check_every = 1 if device.type == "cpu" else 8
    n = len(rows)
    tokens = torch.full((n, max_new_tokens), pad_id, dtype=torch.long, device=device)
    active = torch.arange(n, device=device)  # original row of each row still in the batch
    done = torch.zeros(n, dtype=torch.bool, device=device)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **extra)
    past = None
    for step in range(max_new_tokens):
        logits = out.logits[:, -1, :].float()
        if do_sample:
            probs = _top_p_filter(torch.softmax(logits / max(temperature, 1e-5), dim=-1), top_p)
            nxt = torch.stack([torch.multinomial(probs[i], 1, generator=gens[r])[0]
                               for i, r in enumerate(active.tolist())])
        else:
            nxt = logits.argmax(-1)
        nxt = nxt.masked_fill(done, pad_id)  # rows stopped since the last check emit padding, cut off below
        tokens[active, step] = nxt
        done |= torch.isin(nxt, stop)
        if step == max_new_tokens - 1:
            break
        past = getattr(out, "cache", None) if cache_arg == "cache" else None
        past = past if past is not None else out.past_key_values
        if (step + 1) % check_every == 0 and bool(done.any()):
            keep = (~done).nonzero()[:, 0]
            if len(keep) == 0:
                break
            past.batch_select_indices(keep)
            active, mask, positions, nxt = active[keep], mask[keep], positions[keep], nxt[keep]
            done = done[keep]
        mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype, device=device)], dim=1)
        positions = positions[:, -1:] + 1
        out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=positions, use_cache=True,
                    **{cache_arg: past})
    generated = tokens[:, :step + 1].tolist()
    stop_set = set(stop_ids)
    results = []
    for row in generated:
        cut = next((j for j, t in enumerate(row) if t in stop_set), None)
        results.append((row if cut is None else row[:cut], cut is not None))
    return results


def generate(model, tokenizer, prompts: list[list[dict]], *, max_new_tokens: int = defaults.MAX_NEW_TOKENS,
             batch_size: int = defaults.BATCH_SIZE,
             do_sample: bool = False, temperature: float = 0.7, top_p: float = 0.95, num_samples: int = 1,
             seed: int = 0, progress: bool = True,
             on_batch: Optional[Callable[[list[int], list[list[Generation]]], None]] = None) -> list[list[Generation]]:
    """Answer each chat prompt (messages ending with a user turn, or with an assistant prefix to continue:
    see :func:`~evalkit.runtime.chat_templates.encode_prompt`); outer list per prompt, inner per sample.

    Prompts are sorted by length (longest first) and decoded ``batch_size`` rows at a time under
    ``torch.inference_mode()``. Greedy decoding gives ``num_samples`` copies of one answer. ``on_batch``
    is called with the prompt indices finished by each batch and their generations (the engine caches
    them there, so an interrupted run loses at most one batch).
    """
    import torch
    from tqdm.auto import tqdm

    for name, value, ok in (("max_new_tokens", max_new_tokens, max_new_tokens >= 1),
                            ("batch_size", batch_size, batch_size >= 1),
                            ("num_samples", num_samples, num_samples >= 1),
                            ("temperature", temperature, temperature > 0),
                            ("top_p", top_p, 0 < top_p <= 1)):
        if not ok:
            raise ModelError(f"The '{name}' parameter must be positive{' and <= 1' if name == 'top_p' else ''}. "
                             f"Got {value!r} instead.")
    encoded = [encode_prompt(tokenizer, list(p)) for p in prompts]
    stop_ids = end_of_turn_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    rows_per_prompt = num_samples if do_sample else 1
    per_batch = max(1, batch_size // rows_per_prompt)
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    results: list[list[Generation]] = [[] for _ in prompts]

    was_training = model.training
    model.eval()
    bar = tqdm(total=len(prompts), desc="generate", unit="prompt", disable=not progress, leave=False)
    try:
        with torch.inference_mode():
            for start in range(0, len(order), per_batch):
                idx = order[start:start + per_batch]
                rows = [encoded[i] for i in idx for _ in range(rows_per_prompt)]
                seeds = [row_seed(seed, encoded[i], s) for i in idx for s in range(rows_per_prompt)]
                decoded = _generate_batch(model, rows, seeds, pad_id=pad_id, stop_ids=stop_ids,
                                          max_new_tokens=max_new_tokens, do_sample=do_sample,
                                          temperature=temperature, top_p=top_p)
                for j, i in enumerate(idx):
                    gens = []
                    for ids, stopped in decoded[j * rows_per_prompt:(j + 1) * rows_per_prompt]:
                        text = decode_answer(tokenizer, ids, cut=not stopped)
                        gens.append(Generation(text=text, n_tokens=len(ids), hit_max_tokens=not stopped))
                    results[i] = gens * (num_samples // len(gens))
                if on_batch is not None:
                    on_batch(idx, [results[i] for i in idx])
                bar.update(len(idx))
    finally:
        bar.close()
        model.train(was_training)
    return results
