"""Engine results through the evaluation cache, item by item, optionally sharded over processes.

Every engine stores its generations and scores in :class:`evalkit.cache.Cache` under
:func:`evalkit.cache.cache_key` (kind, base hash, adapter, settings — which hold the engine name and version —
and the item's messages), batch by batch, so an interrupted run resumes with only the missing items.

Data parallel (``dp``: :class:`evalkit.runtime.data_parallel.DataParallel`, ``world > 1``): rank 0 reads the
cache and tells every rank what is missing; the missing items are cut into the SAME batches a single process
would use (``batches``), batch ``b`` goes to rank ``b % world``; every rank caches its batches as they finish
(its shard resumes through the cache) and the results are all-gathered and merged by key. Identical batches
are what makes the results of N processes equal those of one process bit for bit.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..cache import cache_key, decode_array, encode_array
from .base import Generation, TokenScores

__all__ = ["messages_of", "gen_to_json", "gen_from_json", "scores_to_json", "scores_from_json", "cached_compute",
           "length_batches"]


def messages_of(item: Any) -> list[dict]:
    """Messages of a PromptItem / Conversation (``.messages``) or a plain list of {"role", "content"}."""
    msgs = getattr(item, "messages", item)
    return [{"role": m["role"], "content": m["content"]} for m in msgs]


def gen_to_json(gens: list[Generation]) -> list[dict]:
    return [{"text": g.text, "n_tokens": g.n_tokens, "hit_max_tokens": g.hit_max_tokens} for g in gens]


def gen_from_json(rows: list[dict]) -> list[Generation]:
    return [Generation(text=r["text"], n_tokens=int(r["n_tokens"]), hit_max_tokens=bool(r["hit_max_tokens"]))
            for r in rows]


def scores_to_json(s: TokenScores) -> dict:
    def arr(a):
        return None if a is None else encode_array(a)

    return {"nll": None if s.nll != s.nll else s.nll, "n_tokens": s.n_tokens, "logprobs": encode_array(s.logprobs),
            "mu": arr(s.mu), "sigma": arr(s.sigma),
            "correct": None if s.correct is None else encode_array(np.asarray(s.correct, dtype=np.float32))}


def scores_from_json(d: dict) -> TokenScores:
    def arr(key):
        return None if d.get(key) is None else decode_array(d[key])

    correct = arr("correct")
    return TokenScores(nll=float("nan") if d["nll"] is None else float(d["nll"]), n_tokens=int(d["n_tokens"]),
                       logprobs=decode_array(d["logprobs"]), mu=arr("mu"), sigma=arr("sigma"),
                       correct=None if correct is None else correct > 0.5)


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Positions grouped as runtime/generate.py and runtime/loss.py batch them: longest first (stable), then
    ``batch_size`` at a time."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[a:a + batch_size] for a in range(0, len(order), batch_size)]


def cached_compute(cache, kind: str, base_hash: str, adapter: Optional[str], settings: dict,
                   items: list[list[dict]], compute: Callable, to_json: Callable, from_json: Callable, *,
                   dp=None, batches: Optional[Callable[[list], list[list[int]]]] = None) -> list:
    """``compute(todo_items, on_batch)`` for the items not in ``cache``; results in item order.

    ``compute`` calls ``on_batch(positions, results)`` (positions into the list it was given) as batches finish.
    """
    keys = [cache_key(kind, base_hash, adapter, settings, m) for m in items]
    sharded = dp is not None and dp.world > 1
    if sharded:  # one reader decides what is missing, so every rank plans the same batches
        hits = dp.broadcast(cache.get_many(keys) if cache is not None and dp.rank == 0 else {})
    else:
        hits = cache.get_many(keys) if cache is not None else {}
    out: list = [from_json(hits[k]) if k in hits else None for k in keys]
    todo = [i for i, k in enumerate(keys) if k not in hits]
    if not todo:
        return out

    def run(positions: list[int]) -> None:
        def on_batch(idx: list[int], results: list) -> None:
            for j, r in zip(idx, results):
                out[positions[j]] = r
            if cache is not None:
                cache.put_many([(keys[positions[j]], to_json(r)) for j, r in zip(idx, results)])

        compute([items[i] for i in positions], on_batch)

    if not sharded:
        run(todo)
        return out
    plan = batches([items[i] for i in todo]) if batches is not None else [[j] for j in range(len(todo))]
    mine = [[todo[j] for j in b] for n, b in enumerate(plan) if n % dp.world == dp.rank]
    for positions in mine:  # one call per batch: exactly the batch a single process would run
        run(positions)
    merged: dict[int, Any] = {}
    for part in dp.all_gather({i: to_json(out[i]) for b in mine for i in b}):
        merged.update(part)
    theirs = [i for i in merged if out[i] is None]
    for i in theirs:
        out[i] = from_json(merged[i])
    if cache is not None and dp.rank == 0 and theirs:  # rank 0's cache ends complete, even across nodes
        cache.put_many([(keys[i], merged[i]) for i in theirs])
    return out
