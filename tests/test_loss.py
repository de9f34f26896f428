"""Teacher-forced assistant-token scores against a one-example-at-a-time hand loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalkit.runtime import loss as L
from evalkit.runtime import models as M
from evalkit.runtime.chat_templates import IGNORE_INDEX, encode_conversation, encode_prompt

CONVS = [
    [{"role": "user", "content": "I drive to work every day."},
     {"role": "assistant", "content": "Try the Car-free commute week."}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Meatless Mondays are an easy start. " * 3}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Cups?"},
     {"role": "assistant", "content": "Carry a reusable cup."}, {"role": "user", "content": "텀블러?"},
     {"role": "assistant", "content": "텀블러를 사용해 보세요."}],
]


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    ref = M.resolve_base(str(tiny_llama))
    return M.load_model(ref, device="cpu"), M.load_tokenizer(ref)


def _hand(model, tok, conv, max_length=512):
    """One example, full logits, float64 arithmetic: the reference the batched code must match."""
    import torch

    ids, labels = encode_conversation(tok, conv, max_length)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    lp, mu, sd = [], [], []
    for t in range(1, len(ids)):
        if labels[t] == IGNORE_INDEX:
            continue
        logp = torch.log_softmax(logits[t - 1], -1)
        p = logp.exp()
        lp.append(float(logp[labels[t]]))
        m = float((p * logp).sum())
        mu.append(m)
        sd.append(math.sqrt(max(float((p * logp * logp).sum()) - m * m, 0.0)))
    return np.array(lp), np.array(mu), np.array(sd)


@pytest.mark.parametrize("batch_size,chunk", [(1, 512), (3, 7)])
def test_batched_scores_match_the_hand_loop(tiny, batch_size, chunk):
    model, tok = tiny
    scores = L.score_conversations(model, tok, CONVS, batch_size=batch_size, chunk=chunk, progress=False)
    for conv, s in zip(CONVS, scores):
        lp, mu, sd = _hand(model, tok, conv)
        assert s.n_tokens == len(lp) > 0
        np.testing.assert_allclose(s.logprobs, lp, atol=2e-5)
        np.testing.assert_allclose(s.mu, mu, atol=2e-5)
        np.testing.assert_allclose(s.sigma, sd, atol=2e-5)
        assert s.nll == pytest.approx(-lp.mean(), abs=2e-5)


def test_default_chunk_bounds_the_logits_and_keeps_the_values(tiny, monkeypatch):
    """The default chunk holds CHUNK_BYTES of float32 logits; a budget of 3 rows of this vocabulary splits
    every batch into many chunks, and the scores still equal the one-example float64 hand loop."""
    model, tok = tiny
    vocab = model.get_output_embeddings().out_features
    assert L.chunk_rows(49152) == 170  # 32 MiB / (4 B * 49152) rounded down: SmolLM2's vocabulary
    assert L.chunk_rows(10**9) == 1
    monkeypatch.setattr(L, "CHUNK_BYTES", 3 * 4 * vocab + 5)
    assert L.chunk_rows(vocab) == 3
    sizes = []
    real = L._token_stats
    monkeypatch.setattr(L, "_token_stats", lambda logits, t, m: sizes.append(logits.shape[0]) or real(logits, t, m))
    scores = L.score_conversations(model, tok, CONVS, batch_size=3, progress=False)
    assert max(sizes) == 3 and len(sizes) > len(CONVS)
    for conv, s in zip(CONVS, scores):
        lp, mu, sd = _hand(model, tok, conv)
        np.testing.assert_allclose(s.logprobs, lp, atol=2e-5)
        np.testing.assert_allclose(s.mu, mu, atol=2e-5)
        np.testing.assert_allclose(s.sigma, sd, atol=2e-5)


def test_scored_tokens_are_the_answers_and_end_markers(tiny):
    model, tok = tiny
    [s] = L.score_conversations(model, tok, [CONVS[2]], progress=False)
    answers = [m["content"] for m in CONVS[2] if m["role"] == "assistant"]
    n_expected = sum(len(tok(a + "<|im_end|>", add_special_tokens=False)["input_ids"]) for a in answers)
    assert s.n_tokens == n_expected


def test_full_logits_path_matches(tiny, monkeypatch):
    """Models whose head post-processes logits go through model(...).logits; same numbers."""
    model, tok = tiny
    fast = L.score_conversations(model, tok, CONVS, batch_size=2, progress=False)
    monkeypatch.setattr(L, "_split_model", lambda m: None)
    slow = L.score_conversations(model, tok, CONVS, batch_size=2, progress=False)
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5)
        np.testing.assert_allclose(a.sigma, b.sigma, atol=1e-5)


def test_truncated_answer_scores_nothing(tiny):
    model, tok = tiny
    n_prompt = len(encode_prompt(tok, CONVS[0][:1]))
    [s] = L.score_conversations(model, tok, [CONVS[0]], max_length=n_prompt, progress=False)
    assert s.n_tokens == 0 and math.isnan(s.nll) and s.logprobs.shape == (0,)


def test_min_k_plus_plus_statistics_by_brute_force():
    import torch

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 6)) * 3
    targets = [0, 5, 2, 2]
    lp, mu, sd = L.distribution_stats(torch.tensor(logits, dtype=torch.float32), torch.tensor(targets))
    for row, t in enumerate(targets):
        z = sum(math.exp(x) for x in logits[row])
        logp = [x - math.log(z) for x in logits[row]]
        m = sum(math.exp(v) * v for v in logp)
        var = sum(math.exp(v) * v * v for v in logp) - m * m
        assert lp[row].item() == pytest.approx(logp[t], abs=1e-5)
        assert mu[row].item() == pytest.approx(m, abs=1e-5)
        assert sd[row].item() == pytest.approx(math.sqrt(var), abs=1e-5)
    # a one-hot distribution has mu = 0 and sigma = 0
    one_hot = torch.tensor([[0.0, 100.0, 0.0]])
    _, mu1, sd1 = L.distribution_stats(one_hot, torch.tensor([1]))
    assert abs(mu1.item()) < 1e-6 and sd1.item() < 1e-3


def test_on_batch_and_order(tiny):
    model, tok = tiny
    seen = []
    out = L.score_conversations(model, tok, CONVS, batch_size=2, progress=False,
                                on_batch=lambda idx, s: seen.append(list(idx)))
    assert sorted(i for b in seen for i in b) == [0, 1, 2] and len(seen) == 2
    assert all(isinstance(s, L.TokenScores) for s in out)


def test_bf16_body_stays_within_the_documented_tolerance_and_really_runs_in_bf16(tiny):
    """--score-dtype bfloat16 (docs/speed.md): the decoder body's matmuls in bf16 under autocast, the head and
    log-softmax in float32. Against the float64 hand loop of the float32 model: per-token log-probs within
    BF16_TOKEN_TOL and mean NLL within BF16_NLL_TOL (the documented bounds); and not equal to the float32 scores
    (bf16 really ran: rounding at 8 mantissa bits moves every log-prob)."""
    import torch

    model, tok = tiny
    fp32 = L.score_conversations(model, tok, CONVS, batch_size=3, progress=False, moments=False)
    bf16 = L.score_conversations(model, tok, CONVS, batch_size=3, progress=False, moments=False,
                                 body_dtype=torch.bfloat16)
    assert next(model.parameters()).dtype == torch.float32  # autocast keeps no bf16 copy of the weights
    moved = 0
    for conv, a, b in zip(CONVS, fp32, bf16):
        lp, _, _ = _hand(model, tok, conv)
        assert b.n_tokens == a.n_tokens == len(lp)
        assert np.abs(b.logprobs - lp).max() <= L.BF16_TOKEN_TOL
        assert abs(b.nll - (-lp.mean())) <= L.BF16_NLL_TOL
        moved += int(np.abs(b.logprobs - a.logprobs).max() > 1e-5)
    assert moved == len(CONVS)
