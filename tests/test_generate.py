"""Batched generation: left padding, batch independence, stopping at <|im_end|>, max tokens, seeded sampling."""

from __future__ import annotations

import copy

import pytest

from evalkit.runtime import generate as G
from evalkit.runtime import models as M
from evalkit.errors import ModelError
from evalkit.runtime.chat_templates import encode_prompt

SHORT = [{"role": "user", "content": "Hi"}]
LONG = [{"role": "user", "content": "I drive to work every day and want to cut emissions. Any ideas for me?"}]
LONGER = [{"role": "user", "content": "Meatless Mondays are an easy start. " * 4},
          {"role": "assistant", "content": "Cook a lentil curry tonight."},
          {"role": "user", "content": "And then?"}]


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    ref = M.resolve_base(str(tiny_llama))
    return M.load_model(ref, device="cpu"), M.load_tokenizer(ref)


def test_greedy_answer_does_not_depend_on_batch_composition(tiny):
    model, tok = tiny
    [[alone]] = G.generate(model, tok, [SHORT], max_new_tokens=12, progress=False)
    batched = G.generate(model, tok, [LONGER, SHORT, LONG], max_new_tokens=12, batch_size=3, progress=False)
    assert batched[1][0] == alone
    assert [b[0] for b in batched] == [G.generate(model, tok, [p], max_new_tokens=12, progress=False)[0][0]
                                       for p in (LONGER, SHORT, LONG)]


def test_prompts_are_left_padded_with_a_mask(tiny):
    model, tok = tiny
    seen = []
    hook = model.register_forward_pre_hook(lambda mod, args, kwargs: seen.append(kwargs), with_kwargs=True)
    try:
        G.generate(model, tok, [SHORT, LONG], max_new_tokens=2, batch_size=2, progress=False)
    finally:
        hook.remove()
    first = seen[0]
    n_short, n_long = len(encode_prompt(tok, SHORT)), len(encode_prompt(tok, LONG))
    mask = first["attention_mask"]
    # sorted longest first: row 0 is LONG (no padding), row 1 SHORT padded on the LEFT
    assert mask[0].tolist() == [1] * n_long
    assert mask[1].tolist() == [0] * (n_long - n_short) + [1] * n_short
    assert first["input_ids"][1, :n_long - n_short].eq(tok.pad_token_id).all()
    assert first["position_ids"][1, -n_short:].tolist() == list(range(n_short))


def _greedy_ids(model, tok, prompt, n):
    [(ids, _)] = G._generate_batch(model, [encode_prompt(tok, prompt)], [0], pad_id=tok.pad_token_id, stop_ids=[-1],
                                   max_new_tokens=n, do_sample=False, temperature=1.0, top_p=1.0)
    return ids


def test_generation_stops_at_im_end(tiny):
    """Make the tiny model say <|im_end|> as its 3rd token by swapping two rows of its output head."""
    import torch

    model, tok = tiny
    ids = _greedy_ids(model, tok, LONG, 8)
    k = next(i for i in range(2, 8) if ids[i] not in ids[:i])
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert im_end not in ids[:k + 1]
    stopper = copy.deepcopy(model)
    with torch.no_grad():
        w = stopper.lm_head.weight
        w[[ids[k], im_end]] = w[[im_end, ids[k]]]
    [[gen]] = G.generate(stopper, tok, [LONG], max_new_tokens=8, progress=False)
    assert gen.n_tokens == k and not gen.hit_max_tokens
    assert gen.text == tok.decode(ids[:k], skip_special_tokens=True).strip()
    assert "<|im_end|>" not in gen.text


def test_hit_max_tokens_when_no_stop_token(tiny):
    model, tok = tiny
    ids = _greedy_ids(model, tok, SHORT, 6)
    assert tok.eos_token_id not in ids  # the random tiny model never stops by itself here
    [[gen]] = G.generate(model, tok, [SHORT], max_new_tokens=6, progress=False)
    assert gen.hit_max_tokens and gen.n_tokens == 6
    assert gen.text == tok.decode(ids, skip_special_tokens=True).strip()


def test_sampling_is_seeded_per_prompt_and_batch_independent(tiny):
    model, tok = tiny
    kw = dict(max_new_tokens=8, do_sample=True, temperature=1.0, top_p=1.0, progress=False)
    a = G.generate(model, tok, [SHORT, LONG], num_samples=3, seed=1, **kw)
    b = G.generate(model, tok, [LONG], num_samples=3, seed=1, **kw)
    assert a[1] == b[0]  # same seed, same prompt, different batch: same samples
    assert len(a[0]) == 3 and len({g.text for g in a[0]}) > 1  # samples of one prompt differ
    c = G.generate(model, tok, [LONG], num_samples=3, seed=2, **kw)
    assert c[0] != b[0]
    greedy = G.generate(model, tok, [SHORT], num_samples=2, max_new_tokens=4, progress=False)
    assert greedy[0][0] == greedy[0][1]


def test_top_p_filter_keeps_the_smallest_nucleus():
    import torch

    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    assert (G._top_p_filter(probs, 0.7) > 0).tolist() == [[True, True, False, False]]
    assert (G._top_p_filter(probs, 0.4) > 0).tolist() == [[True, False, False, False]]
    assert G._top_p_filter(probs, 0.7)[0, :2].tolist() == probs[0, :2].tolist()
    assert G._top_p_filter(probs, 1.0) is probs


def test_on_batch_reports_length_sorted_batches(tiny):
    model, tok = tiny
    calls = []
    out = G.generate(model, tok, [SHORT, LONGER, LONG], max_new_tokens=2, batch_size=2, progress=False,
                     on_batch=lambda idx, gens: calls.append((idx, gens)))
    assert [c[0] for c in calls] == [[1, 2], [0]]
    assert calls[0][1] == [out[1], out[2]]


def test_bad_settings_name_the_parameter(tiny):
    model, tok = tiny
    with pytest.raises(ModelError, match="'max_new_tokens' parameter"):
        G.generate(model, tok, [SHORT], max_new_tokens=0, progress=False)
    with pytest.raises(ModelError, match="'top_p' parameter"):
        G.generate(model, tok, [SHORT], top_p=1.5, progress=False)


# ---------------------------------------------------------------- equivalence with transformers' own greedy search


def _reference_greedy(model, prompt_ids: list[int], n: int, stop: list[int], pad_id: int) -> list[int]:
    """``model.generate(do_sample=False)`` on the prompt alone (no padding), cut before the first stop token."""
    import torch

    ids = torch.tensor([prompt_ids])
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                         num_beams=1, eos_token_id=stop, pad_token_id=pad_id)[0, len(prompt_ids):].tolist()
    cut = next((j for j, t in enumerate(out) if t in stop), None)
    return out if cut is None else out[:cut]


@pytest.mark.parametrize("arch", ["tiny_llama", "tiny_mistral"])
def test_greedy_decode_equals_model_generate(arch, request):
    """The decode loop (left padding, KV cache, rows dropped from the batch as they stop) gives exactly
    the tokens of transformers' greedy search on each prompt alone, stopping or not."""
    ref = M.resolve_base(str(request.getfixturevalue(arch)))
    model, tok = M.load_model(ref, device="cpu"), M.load_tokenizer(ref)
    prompts = [encode_prompt(tok, p) for p in (LONGER, SHORT, LONG)]
    n = 12
    free = [_reference_greedy(model, p, n, [-1], tok.pad_token_id) for p in prompts]
    # stop tokens that end two rows early, at different steps, while the third runs to max_new_tokens
    stop = [free[0][3], free[1][6]]
    if stop[0] in free[1][:6] or stop[1] in free[0][:3]:
        stop = [free[0][3]]
    expected = [_reference_greedy(model, p, n, stop, tok.pad_token_id) for p in prompts]
    assert len({len(e) for e in expected}) > 1  # the fixture exercises rows that stop at different steps
    got = G._generate_batch(model, prompts, [0, 0, 0], pad_id=tok.pad_token_id, stop_ids=stop, max_new_tokens=n,
                            do_sample=False, temperature=1.0, top_p=1.0)
    assert [ids for ids, _ in got] == expected
    assert [stopped for _, stopped in got] == [len(e) < n for e in expected]  # a stop token within n
    # and through the public entry point, with the tokenizer's own stop tokens and a smaller batch
    texts = [g[0].text for g in G.generate(model, tok, [LONGER, SHORT, LONG], max_new_tokens=n, batch_size=2,
                                           progress=False)]
    stops = G.end_of_turn_ids(tok)
    refs = [_reference_greedy(model, p, n, stops, tok.pad_token_id) for p in prompts]
    assert texts == [G.decode_answer(tok, ids, cut=len(ids) == n) for ids in refs]


def test_an_answer_cut_inside_a_korean_character_ends_cleanly(tiny):
    _model, tok = tiny
    text = "텀블러를 사용해 보세요. 일회용 컵을 줄일 수 있어요."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    raw = [tok.decode(ids[:k], skip_special_tokens=True) for k in range(1, len(ids) + 1)]
    split = [k for k, t in enumerate(raw, 1) if t.endswith("\ufffd")]
    assert split  # the tiny byte-level BPE does split characters over tokens, so plain decoding shows U+FFFD
    for k in range(1, len(ids) + 1):
        cut = G.decode_answer(tok, ids[:k], cut=True)
        assert "\ufffd" not in cut and text.startswith(cut)
        # nothing more is dropped than the partial character
        assert cut == raw[k - 1].rstrip("\ufffd").strip()
    assert G.decode_answer(tok, ids, cut=False) == text  # a stopped answer is decoded as it is
