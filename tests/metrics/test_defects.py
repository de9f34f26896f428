"""Output defect flags (evalkit/metrics/defects.py): each flag, and a near miss that must not fire."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.metrics.defects import DEFECT_FLAGS, TEMPLATE_MARKERS, defect_flags, defect_rates

REPO = Path(__file__).resolve().parents[2]


def test_flag_names_match_the_registry():
    from evalkit.metrics.registry import METRICS
    assert DEFECT_FLAGS == ("escaped_newline", "template_leak", "empty", "truncated", "repetition")
    assert all(f"{f}_rate" in METRICS for f in DEFECT_FLAGS)


@pytest.mark.parametrize("text,flag", [
    ("Use a tumbler.\\nIt saves cups.", "escaped_newline"),  # backslash + n, as typed in JSON
    ("Line one.\\r\\nLine two.", "escaped_newline"),
    ("Try it.<|im_end|>", "template_leak"),
    ("[INST] What else? [/INST]", "template_leak"),
    ("Sure.<|eot_id|><|start_header_id|>user<|end_header_id|>", "template_leak"),
    ("Enjoy!\nuser\nWhat about buses?", "template_leak"),  # ChatML turn with special tokens stripped
    ("Enjoy!\n\nassistant\n\nSure, here", "template_leak"),  # Llama-3 header with special tokens stripped
    ("Done.\nuser", "template_leak"),
    ("   \n\t ", "empty"),
    ("", "empty"),
    ("go to the shop go to the shop go to the shop", "repetition"),  # tandem loop: 4 tokens x 3 = 12
    ("Cycling is fun. " + "I will help you save energy. " * 3, "repetition"),  # sentence said 3 times
    ("Tip: " + "the bus is green and cheap, " * 4, "repetition"),
    ("텀블러를 쓰세요. " + "컵을 줄여요 " * 4, "repetition"),  # Korean: 4 syllables x 4 copies
])
def test_each_flag_fires(text, flag):
    assert flag in defect_flags(text)


@pytest.mark.parametrize("text,flag", [
    ("Use a tumbler.\nIt saves cups.", "escaped_newline"),  # a real newline
    ("Use 1/n of the budget, or \\t tabs \\ alone.", "escaped_newline"),
    ("Tell the user\nthat the assistant can help.", "template_leak"),  # role word inside prose
    ("User: I drive.\nAssistant: Try the bus.", "template_leak"),  # a transcript quoted on purpose
    ("user\nThe first line alone is not a leak", "template_leak"),
    ("Strike <b>this</b> and <sa> that.", "template_leak"),
    (" . ", "empty"),
    ("very, very, very good", "repetition"),  # emphasis: loop covers 3 tokens < 12
    ("I recommend this. I recommend this.", "repetition"),  # twice is not a loop
    ("Save energy. Save energy. Save energy.", "repetition"),  # 2-token sentence, loop of 6 tokens
    ("The bus is great and the bus is cheap and the bus is green.", "repetition"),
    ("하하하 좋아요", "repetition"),
    # formal Korean: "수 있습니다" (4-gram 수있습니 / 있습니다) ends every sentence, but once each
    ("텀블러를 사용할 수 있습니다. 컵을 줄일 수 있습니다. 에너지를 아낄 수 있습니다. 돈도 절약할 수 있습니다.", "repetition"),
])
def test_near_misses_do_not_fire(text, flag):
    assert flag not in defect_flags(text)


def test_truncated_and_order():
    assert defect_flags("Fine.", hit_max_tokens=True) == ("truncated",)
    assert defect_flags("Fine.", hit_max_tokens=None) == () == defect_flags("Fine.", hit_max_tokens=False)
    # stable DEFECT_FLAGS order whatever the detection order
    text = "Go. " + "buy less stuff now " * 4 + "\\n</s>"
    assert defect_flags(text, hit_max_tokens=True) == ("escaped_newline", "template_leak", "truncated", "repetition")
    assert defect_flags("  ", hit_max_tokens=True) == ("empty", "truncated")


def test_custom_markers():
    assert "template_leak" not in defect_flags("Hi <|im_end|>", markers=())
    assert "template_leak" in defect_flags("Hi <eos>", markers=("<eos>",))
    assert "<|im_end|>" in TEMPLATE_MARKERS


def test_bundled_answers_have_no_defects():
    # Every prompt and answer of the eco data (English and Korean) is ordinary prose: zero flags.
    texts = []
    for path in sorted((REPO / "benchmarks/eco").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts += [m["content"] for m in json.loads(line)["messages"]]
    for path in sorted((REPO / "prompts").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts += [row["prompt"], row.get("reference") or ""]
    if not texts:
        pytest.skip("no bundled data")
    assert {t[:60]: defect_flags(t) for t in texts if defect_flags(t)} == {}


def test_rates():
    flags = [("empty",), ("truncated", "repetition"), (), ("verbatim",)]
    rates = defect_rates(flags)
    assert rates == {"escaped_newline_rate": 0.0, "template_leak_rate": 0.0, "empty_rate": 0.25,
                     "truncated_rate": 0.25, "repetition_rate": 0.25}
    assert "truncated_rate" not in defect_rates(flags, truncation_known=False)
    assert defect_rates([]) == {}


def tandem_brute_force(t):
    """>= 3 back-to-back copies of some block t[i:i+k], covering >= 12 tokens with a partial tail."""
    n = len(t)
    for k in range(1, n + 1):
        for i in range(n):
            copies = 1
            while i + (copies + 1) * k <= n and t[i + copies * k:i + (copies + 1) * k] == t[i:i + k]:
                copies += 1
            end = i + copies * k
            while end < n and t[end] == t[end - k]:
                end += 1
            if copies >= 3 and end - i >= 12:
                return True
    return False


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from("aab"), max_size=24), st.lists(st.sampled_from("abcdef"), max_size=8))
def test_tandem_rule_matches_brute_force(loop, noise):
    from evalkit.metrics.defects import _tandem_loop
    toks = noise + loop
    assert _tandem_loop(toks) == tandem_brute_force(toks)


def test_loop_after_a_long_preamble():
    # The loop's block holds its first 4-gram twice (a a a a ... a a a a), and the 21-token preamble dilutes
    # seq-rep-4: 51 tokens, 48 4-grams, 30 distinct -> 1 - 30/48 = 0.375 < 0.5. Only the tandem rule
    # (period 10, 3 copies, 30 tokens) catches it.
    pre = "we should all try to cut emissions by taking the bus more often and cycling when we can because it helps"
    text = pre + " " + " ".join(["a a a a b a a a a c"] * 3)
    assert "repetition" in defect_flags(text)
