"""Word-level diff (evalkit/report/diff.py): hand-checked cases and a round-trip property."""

from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.report.diff import DiffToken, tokenize, word_diff


def _sides(tokens):
    base = "".join(t.text for t in tokens if t.op in ("same", "del"))
    cand = "".join(t.text for t in tokens if t.op in ("same", "ins"))
    return base, cand


def test_tokenize_words_punctuation_space_and_escape_artifact():
    assert tokenize("Hi, you.\\nOK") == ["Hi", ", ", "you", ".", "\\n", "OK"]
    assert tokenize(" 텀블러를 쓰세요\n") == [" ", "텀블러를 ", "쓰세요\n"]
    assert tokenize("") == []


def test_one_word_replaced():
    got = word_diff("Carry a reusable cup today", "Carry a reusable bottle today")
    assert got == [DiffToken("same", "Carry a reusable "), DiffToken("del", "cup "), DiffToken("ins", "bottle "),
                   DiffToken("same", "today")]


def test_insertion_only_and_identical():
    assert word_diff("Use LED bulbs", "Use LED bulbs now") == [DiffToken("same", "Use LED bulbs"),
                                                               DiffToken("ins", " now")]
    assert word_diff("same text", "same text") == [DiffToken("same", "same text")]
    assert word_diff("", "") == []


def test_minor_equal_runs_between_edits_are_folded():
    # "the" alone must not anchor the diff between two rewritten phrases
    got = word_diff("switch off the lights at night", "unplug chargers the moment you leave")
    assert [t.op for t in got] == ["del", "ins"]


def test_korean_word_change():
    got = word_diff("텀블러를 가방에 넣고 다니세요", "텀블러를 책상에 두고 쓰세요")
    assert got[0] == DiffToken("same", "텀블러를 ")
    assert _sides(got) == ("텀블러를 가방에 넣고 다니세요", "텀블러를 책상에 두고 쓰세요")


def test_escape_artifact_is_one_token_in_the_diff():
    got = word_diff("Line one. Line two.", "Line one.\\nLine two.")
    assert DiffToken("ins", "\\n") in got or any(t.op == "ins" and "\\n" in t.text for t in got)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab 가나.\\n\n", max_size=40), st.text(alphabet="ab 가나.\\n\n", max_size=40))
def test_round_trip(a, b):
    toks = word_diff(a, b)
    assert _sides(toks) == (a, b)
    assert all(t.text for t in toks)
    assert all(x.op != y.op for x, y in zip(toks, toks[1:]))  # adjacent tokens of one kind are merged
