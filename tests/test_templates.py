"""Chat template traps (the seed's config.json template, double BOS) and assistant-only labels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalkit.runtime import chat_templates as T
from evalkit.errors import ModelError

SEED_TEMPLATE = ("{% for message in messages %}{% if message['role'] == 'user' %}<s>[INST] {{ message['content'] }} "
                 "[/INST]{% else %} {{ message['content'] }} </s>{% endif %}{% endfor %}")

CONV = [
    {"role": "user", "content": "I drive to work every day.\nWhat can I do?"},
    {"role": "assistant", "content": "Try the Car-free commute week:\ntake the bus."},
    {"role": "user", "content": "텀블러?"},
    {"role": "assistant", "content": "텀블러를 사용해 보세요."},
]


@pytest.fixture(scope="module")
def tok(tiny_llama):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama)


def _mistral_like(tiny_llama):
    """The tiny tokenizer made Mistral-like: <s>/</s> specials, BOS added on encode, the seed's template."""
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(tiny_llama)
    t.add_special_tokens({"bos_token": "<s>", "eos_token": "</s>"})
    t.add_bos_token = True
    t.chat_template = SEED_TEMPLATE
    assert t("hi")["input_ids"][0] == t.bos_token_id  # the tokenizer really adds BOS now
    return t


def _copy_without_tokenizer_template(src: Path, dst: Path, config_template: str | None) -> Path:
    shutil.copytree(src, dst)
    (dst / "chat_template.jinja").unlink(missing_ok=True)
    tc = json.loads((dst / "tokenizer_config.json").read_text())
    tc.pop("chat_template", None)
    (dst / "tokenizer_config.json").write_text(json.dumps(tc))
    if config_template is not None:
        cfg = json.loads((dst / "config.json").read_text())
        cfg["chat_template"] = config_template
        (dst / "config.json").write_text(json.dumps(cfg))
    return dst


# ---------------------------------------------------------------- resolve_chat_template


def test_tokenizer_template_is_used_without_warnings(tiny_llama, tok):
    info = T.resolve_chat_template(tiny_llama, tok)
    assert info.source == "tokenizer"
    assert info.template == tok.chat_template
    assert info.warnings == ()
    assert len(info.sha256) == 64


def test_config_json_template_is_detected_and_usable_with_the_option(tiny_llama, tmp_path):
    from transformers import AutoTokenizer

    folder = _copy_without_tokenizer_template(tiny_llama, tmp_path / "m", SEED_TEMPLATE)
    tok = AutoTokenizer.from_pretrained(folder)
    assert not tok.chat_template  # transformers ignores config.json's template: the trap
    with pytest.raises(ModelError, match="config.json.*--chat-template-from-config"):
        T.resolve_chat_template(folder, tok)
    info = T.resolve_chat_template(folder, tok, use_config_template=True)
    assert info.source == "config.json"
    assert tok.chat_template == SEED_TEMPLATE
    assert T.render(tok, CONV[:2]).startswith("<s>[INST] I drive")


def test_config_json_template_differing_from_tokenizer_is_reported_as_ignored(tiny_llama, tmp_path):
    from transformers import AutoTokenizer

    folder = tmp_path / "m"
    shutil.copytree(tiny_llama, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["chat_template"] = SEED_TEMPLATE
    (folder / "config.json").write_text(json.dumps(cfg))
    tok = AutoTokenizer.from_pretrained(folder)
    info = T.resolve_chat_template(folder, tok)
    assert info.source == "tokenizer (config.json ignored)"
    assert any("config.json" in w and "ignores" in w for w in info.warnings)
    assert "<|im_start|>" in T.render(tok, CONV[:2])


def test_no_template_anywhere_is_an_error(tiny_llama, tmp_path):
    from transformers import AutoTokenizer

    folder = _copy_without_tokenizer_template(tiny_llama, tmp_path / "m", None)
    with pytest.raises(ModelError, match="no chat template"):
        T.resolve_chat_template(folder, AutoTokenizer.from_pretrained(folder))


def test_double_bos_is_warned_and_avoided(tiny_llama):
    t = _mistral_like(tiny_llama)
    info = T.resolve_chat_template(tiny_llama, t)
    assert any("BOS" in w and "two" in w for w in info.warnings)
    # what a naive encode does: two BOS
    naive = t(T.render(t, CONV[:1], add_generation_prompt=True))["input_ids"]
    assert naive[:2] == [t.bos_token_id, t.bos_token_id]
    # evalkit: exactly one
    ids = T.encode_prompt(t, CONV[:1])
    assert ids[0] == t.bos_token_id and ids[1] != t.bos_token_id
    ids, labels = T.encode_conversation(t, CONV[:2], 512)
    assert ids[0] == t.bos_token_id and ids[1] != t.bos_token_id


def test_tokenizer_bos_is_kept_when_the_template_lacks_it(tiny_llama):
    t = _mistral_like(tiny_llama)
    t.chat_template = SEED_TEMPLATE.replace("<s>", "")
    assert T.resolve_chat_template(tiny_llama, t).warnings == ()
    ids = T.encode_prompt(t, CONV[:1])
    assert ids[0] == t.bos_token_id and ids[1] != t.bos_token_id


def test_no_double_bos_warning_for_chatml(tok, tiny_llama):
    # the tiny tokenizer's BOS is <|im_start|> (as SmolLM2's) but it does not add it when encoding
    assert T.resolve_chat_template(tiny_llama, tok).warnings == ()


# ---------------------------------------------------------------- labels


def _labelled_text(t, ids, labels) -> str:
    return t.decode([i for i, lab in zip(ids, labels) if lab != T.IGNORE_INDEX])


def test_labels_cover_exactly_each_answer_and_its_end_marker(tok):
    ids, labels = T.encode_conversation(tok, CONV, 512)
    assert len(ids) == len(labels)
    assert _labelled_text(tok, ids, labels) == CONV[1]["content"] + "<|im_end|>" + CONV[3]["content"] + "<|im_end|>"
    # the unlabelled part decodes to everything else: role headers, user turns, the newline after <|im_end|>
    unlabelled = tok.decode([i for i, lab in zip(ids, labels) if lab == T.IGNORE_INDEX])
    assert "I drive to work" in unlabelled and "Try the" not in unlabelled
    # the ids are the template's text, and the prompt ids are exactly what generation sees
    assert tok.decode(ids) == T.render(tok, CONV)
    prompt = T.encode_prompt(tok, CONV[:1])
    assert ids[:len(prompt)] == prompt and labels[len(prompt)] != T.IGNORE_INDEX
    assert all(lab == T.IGNORE_INDEX for lab in labels[:len(prompt)])


def test_labels_with_the_seed_template_include_the_closing_eos(tiny_llama):
    t = _mistral_like(tiny_llama)
    ids, labels = T.encode_conversation(t, CONV[:2], 512)
    assert _labelled_text(t, ids, labels) == " " + CONV[1]["content"] + " </s>"


def test_truncation_from_the_right(tok):
    ids, labels = T.encode_conversation(tok, CONV[:2], 512)
    prompt_len = len(T.encode_prompt(tok, CONV[:1]))
    short_ids, short_labels = T.encode_conversation(tok, CONV[:2], prompt_len + 2)
    assert short_ids == ids[:prompt_len + 2] and sum(lab != -100 for lab in short_labels) == 2
    gone_ids, gone_labels = T.encode_conversation(tok, CONV[:2], prompt_len)
    assert len(gone_ids) == prompt_len and all(lab == -100 for lab in gone_labels)
    with pytest.raises(ModelError, match="max_length"):
        T.encode_conversation(tok, CONV[:2], 0)


def test_prefix_inconsistent_template_is_an_error(tiny_llama):
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(tiny_llama)
    # renders the turn count up front: every prefix rendering differs from the conversation's start
    t.chat_template = "{{ messages|length }}:{% for m in messages %}{{ m['content'] }}|{% endfor %}"
    with pytest.raises(ModelError, match="prefix-consistent"):
        T.encode_conversation(t, CONV[:2], 512)


def test_end_of_turn_ids(tok):
    ids = T.end_of_turn_ids(tok)
    assert ids[0] == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert len(ids) == len(set(ids))
