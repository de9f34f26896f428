"""Per-example scores of the assistant tokens under teacher forcing.

For each conversation the tokens labelled by :func:`evalkit.runtime.chat_templates.encode_conversation` (every
assistant answer and its end marker) are scored. Per token we keep its log-probability and whether it is
the model's argmax (EZ-MIA's "error zone" is the tokens where it is not), and, with ``moments=True``, the
Min-K%++ statistics of the full next-token distribution at that position (Zhang et al. 2024):

    mu_t      = sum_v p(v) log p(v)                      (minus the entropy)
    sigma_t^2 = sum_v p(v) (log p(v))^2 - mu_t^2

so membership scores ((log p(x_t) - mu_t) / sigma_t, averaged over the lowest k%) can be computed later
without the model. The moments cost ~30% of the scoring time on CPU (two more full-vocabulary passes),
so they are optional (``moments=False``: ``mu`` and ``sigma`` are None).

``SCORE_FORMAT`` names the fields a TokenScores carries; the engine puts it in the cache key, so entries
written before a field was added are never read back without it.

Memory: the logits are never built for the whole batch. The decoder body runs once; the output head and a
float32 log_softmax run only on the scored positions, ``chunk`` rows at a time. By default a chunk holds
``CHUNK_BYTES`` of float32 logits (170 rows of a 49k vocabulary): each full-vocabulary temporary (logits,
log-probabilities; with moments also probabilities and products) is then at most 32 MiB. At 512 rows they
were ~100 MB each, which made scoring the peak of an eval's RSS (issue 13); smaller chunks cost nothing
measurable, the head's matmul is as efficient at 170 rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .chat_templates import IGNORE_INDEX, encode_conversation

__all__ = ["TokenScores", "score_conversations", "distribution_stats", "chunk_rows", "SCORE_FORMAT", "CHUNK_BYTES",
           "BF16_TOKEN_TOL", "BF16_NLL_TOL", "body_precision"]

SCORE_FORMAT = 2  # 2: + argmax correctness per token, Min-K%++ moments optional
CHUNK_BYTES = 32 * 2**20  # float32 logits per chunk of scored positions (see the module docstring)
# --score-dtype bfloat16 against float32 (docs/speed.md): measured on the default model, 228 conversations,
# 20,772 scored tokens: per-token |d log p| max 0.44 (p99 0.12), per-conversation |d mean NLL| max 0.013
# (mean 0.0035, signed mean +0.0004: no bias). The documented bounds, which tests/test_loss.py asserts:
BF16_TOKEN_TOL = 0.5
BF16_NLL_TOL = 0.02


def chunk_rows(vocab_size: int) -> int:
    """Scored positions per chunk: as many rows of float32 logits as fit in ``CHUNK_BYTES`` (at least 1)."""
    return max(1, CHUNK_BYTES // (4 * max(1, vocab_size)))


@dataclass
class TokenScores:
    nll: float  # mean NLL per scored token (nan when n_tokens == 0: the answer was truncated away)
    n_tokens: int  # scored tokens (answer + end marker, after truncation to max_length)
    logprobs: np.ndarray  # log p of each scored token, float32 [n_tokens]
    mu: Optional[np.ndarray] = None  # Min-K%++ mean of log p under the model's distribution (moments=True)
    sigma: Optional[np.ndarray] = None  # Min-K%++ standard deviation of log p at each position (moments=True)
    correct: Optional[np.ndarray] = None  # bool [n_tokens]: the token is the model's argmax at its position

    def __eq__(self, other) -> bool:  # dataclass eq on arrays is ambiguous; compare values
        if not isinstance(other, TokenScores):
            return NotImplemented
        same_nll = (math.isnan(self.nll) and math.isnan(other.nll)) or self.nll == other.nll
        def same(a, b) -> bool:
            return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))

        return (same_nll and self.n_tokens == other.n_tokens and np.array_equal(self.logprobs, other.logprobs)
                and same(self.mu, other.mu) and same(self.sigma, other.sigma) and same(self.correct, other.correct))


def distribution_stats(logits, targets):
    """(log p(target), mu, sigma) per row of float logits [N, V] — the reference definition."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    p = logp.exp()
    mu = (p * logp).sum(-1)
    # sum p (log p - mu)^2, not sum p (log p)^2 - mu^2: the latter cancels catastrophically in float32
    # when the distribution is flat (mu^2 ~ 36 for a 400-token vocab, variance ~ 0.01)
    sigma = (p * (logp - mu[:, None]).square()).sum(-1).sqrt()
    return logp.gather(-1, targets[:, None])[:, 0], mu, sigma


def _token_stats(logits, targets, moments: bool):
    """(log p(target), target is the argmax, mu, sigma) per row; mu/sigma only with ``moments``."""
    import torch

    correct = logits.argmax(-1) == targets
    if moments:
        lp, mu, sigma = distribution_stats(logits, targets)
        return lp, correct, mu, sigma
    lp = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[:, None])[:, 0]
    return lp, correct, None, None


def _split_model(model):
    """(decoder body, output head) of a causal LM, or None when the head is not a plain projection."""
    import torch.nn as nn

    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = getattr(lm, "config", None)
    # Models that post-process logits (softcapping, scaling) go through the full forward.
    for attr in ("final_logit_softcapping", "logit_scale", "logits_scaling"):
        if getattr(cfg, attr, None) not in (None, 1, 1.0):
            return None
    head = lm.get_output_embeddings() if hasattr(lm, "get_output_embeddings") else None
    body = getattr(lm, "model", None)
    if not isinstance(head, nn.Linear) or body is None or not callable(body):
        return None
    return body, head


def body_precision(device_type: str, body_dtype):
    """The context the decoder body runs in: ``torch.autocast`` to ``body_dtype`` (bfloat16 matmuls with
    a float32 residual stream; weights cast per call, no copy kept: ``cache_enabled=False``), or nothing
    when ``body_dtype`` is None. The output head always runs in float32 on the float32 hidden states."""
    import contextlib

    import torch

    if body_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=body_dtype, cache_enabled=False)


def score_conversations(model, tokenizer, conversations: list[list[dict]], *, max_length: int = 512,
                        batch_size: int = 8, progress: bool = True, chunk: Optional[int] = None, moments: bool = True,
                        body_dtype=None,
                        on_batch: Optional[Callable[[list[int], list[TokenScores]], None]] = None) -> list[TokenScores]:
    """Teacher-forced scores of every conversation's assistant tokens; one TokenScores per conversation.

    Batches are length-sorted and RIGHT-padded. ``on_batch(indices, scores)`` is called after each batch.
    ``moments=False`` skips the Min-K%++ statistics (``mu``/``sigma`` None; see the module docstring).
    ``chunk``: scored positions per output-head chunk (default :func:`chunk_rows` of the vocabulary).
    ``body_dtype`` (e.g. ``torch.bfloat16``): the decoder body's matmuls in that dtype under autocast
    (:func:`body_precision`; docs/speed.md gives the measured tolerance); the head and the log-softmax stay
    float32. Models without a plain output head (see ``_split_model``) run the whole forward under it.
    """
    import torch
    from tqdm.auto import tqdm

    encoded = [encode_conversation(tokenizer, list(c), max_length) for c in conversations]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
    results: list[Optional[TokenScores]] = [None] * len(encoded)
    split = _split_model(model)
    device = next(model.parameters()).device

    was_training = model.training
    model.eval()
    bar = tqdm(total=len(encoded), desc="score", unit="example", disable=not progress, leave=False)
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                width = max(len(encoded[i][0]) for i in idx)
                ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
                labels = torch.full((len(idx), width), IGNORE_INDEX, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for r, i in enumerate(idx):
                    n = len(encoded[i][0])
                    ids[r, :n] = torch.tensor(encoded[i][0])
                    labels[r, :n] = torch.tensor(encoded[i][1])
                    mask[r, :n] = 1
                ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
                # position t predicts token t+1
                targets = labels[:, 1:]
                rows, cols = (targets != IGNORE_INDEX).nonzero(as_tuple=True)
                if split is not None:
                    body, head = split
                    with body_precision(device.type, body_dtype):
                        hidden = body(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
                    hidden = hidden[rows, cols].to(head.weight.dtype)

                    def logits_of(a, b):
                        return head(hidden[a:b])
                else:
                    with body_precision(device.type, body_dtype):
                        full = model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()

                    def logits_of(a, b):
                        return full[rows[a:b], cols[a:b]]
                tgt = targets[rows, cols]
                rows_per_chunk = chunk or chunk_rows(head.out_features if split is not None else full.shape[-1])
                parts = [_token_stats(logits_of(a, a + rows_per_chunk), tgt[a:a + rows_per_chunk], moments)
                         for a in range(0, len(tgt), rows_per_chunk)]
                if parts:
                    lp, ok, mu, sd = (None if x[0] is None else torch.cat(x).cpu().numpy() for x in zip(*parts))
                else:
                    lp, ok = np.zeros(0, dtype=np.float32), np.zeros(0, dtype=bool)
                    mu = sd = np.zeros(0, dtype=np.float32) if moments else None
                row_of = rows.cpu().numpy()
                for r, i in enumerate(idx):
                    sel = row_of == r
                    n = int(sel.sum())
                    results[i] = TokenScores(nll=float(-lp[sel].astype(np.float64).mean()) if n else float("nan"),
                                             n_tokens=n, logprobs=lp[sel].astype(np.float32),
                                             mu=None if mu is None else mu[sel].astype(np.float32),
                                             sigma=None if sd is None else sd[sel].astype(np.float32),
                                             correct=ok[sel].astype(bool))
                if on_batch is not None:
                    on_batch(idx, [results[i] for i in idx])
                bar.update(len(idx))
    finally:
        bar.close()
        model.train(was_training)
    return results  # type: ignore[return-value]
