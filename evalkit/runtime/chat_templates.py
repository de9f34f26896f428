"""Chat templates: find the right one, catch the seed's traps, and encode conversations with it.

The seed (docs/models.md, "Chat template traps") put a Mistral ``[INST]`` template into **config.json**.
transformers reads chat templates only from the tokenizer files (``tokenizer_config.json`` or
``chat_template.jinja``), so that template was silently ignored. And the template's own ``<s>`` plus the
BOS that Mistral's tokenizer adds when encoding gives **two** BOS tokens. :func:`resolve_chat_template`
detects both; every encoder here renders the chat text and then encodes it with
``add_special_tokens=False`` (adding the tokenizer's BOS itself only when the rendered text lacks it),
so a sequence never starts with two BOS tokens.

Labels (:func:`encode_conversation`) cover exactly the tokens of every assistant turn's content and its
end-of-turn marker (``<|im_end|>``, ``</s>``, ...), so the model is scored on answering *and* stopping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..io import sha256_text

__all__ = [
    "TemplateInfo",
    "IGNORE_INDEX",
    "END_MARKERS",
    "resolve_chat_template",
    "render",
    "encode_text",
    "encode_conversation",
    "encode_prompt",
    "end_of_turn_ids",
    "describe",
]

IGNORE_INDEX = -100  # label of a token that is not scored (prompt, padding, template glue)

# End-of-turn markers of common chat templates (ChatML, Llama-3, Mistral/Llama-2, Gemma, Phi-3).
END_MARKERS = ("<|im_end|>", "<|eot_id|>", "</s>", "<end_of_turn>", "<|end|>")

_PROBE = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there"}]


@dataclass(frozen=True)
class TemplateInfo:
    """The chat template in use, where it came from, and what looked wrong about it."""

    template: str
    source: str  # "tokenizer" | "config.json" | "tokenizer (config.json ignored)"
    sha256: str  # of the template text, recorded in run provenance
    warnings: tuple[str, ...] = ()


def _tokenizer_template(tokenizer) -> str | None:
    tpl = getattr(tokenizer, "chat_template", None)
    if isinstance(tpl, dict):  # named templates: {"default": ..., "tool_use": ...}
        tpl = tpl.get("default") or next(iter(tpl.values()), None)
    return tpl or None


def _config_template(model_dir: Path) -> str | None:
    cfg = Path(model_dir) / "config.json"
    if not cfg.is_file():
        return None
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    tpl = data.get("chat_template") if isinstance(data, dict) else None
    return tpl if isinstance(tpl, str) and tpl.strip() else None


def resolve_chat_template(model_dir: Path, tokenizer, *, use_config_template: bool = False) -> TemplateInfo:
    """Decide which chat template to use and set it on ``tokenizer``; ModelError when there is none.

    ``use_config_template=True`` (CLI ``--chat-template-from-config``) takes the template from
    config.json, where transformers never looks, and installs it on the tokenizer.
    """
    model_dir = Path(model_dir)
    tok_tpl = _tokenizer_template(tokenizer)
    cfg_tpl = _config_template(model_dir)
    warnings: list[str] = []

    if cfg_tpl and use_config_template:
        if tok_tpl and tok_tpl != cfg_tpl:
            warnings.append(f"{model_dir}/config.json: using its chat_template (--chat-template-from-config) "
                            "instead of the different one in the tokenizer files")
        tokenizer.chat_template = cfg_tpl
        template, source = cfg_tpl, "config.json"
    elif tok_tpl:
        template, source = tok_tpl, "tokenizer"
        if cfg_tpl and cfg_tpl != tok_tpl:
            source = "tokenizer (config.json ignored)"
            warnings.append(f"{model_dir}/config.json has a chat_template that differs from the tokenizer's; "
                            "transformers ignores config.json's, so the tokenizer's is used "
                            "(pass --chat-template-from-config to train, eval or compare to use config.json's)")
    elif cfg_tpl:
        raise ModelError(
            f"{model_dir}: the chat template is in config.json, but transformers reads chat templates only from "
            "the tokenizer files, so the model would be prompted without it; pass --chat-template-from-config "
            "(train, eval and compare accept it), "
            "or move it into tokenizer_config.json ('chat_template') or chat_template.jinja")
    else:
        raise ModelError(
            f"{model_dir}: no chat template (neither in the tokenizer files nor in config.json); evalkit prompts "
            "chat models with their template, so add one to tokenizer_config.json or chat_template.jinja")
    if use_config_template and not cfg_tpl:
        warnings.append(f"{model_dir}/config.json has no chat_template; --chat-template-from-config ignored, "
                        "the tokenizer's template is used")

    double = _double_bos_warning(tokenizer)
    if double:
        warnings.append(double)
    return TemplateInfo(template=template, source=source, sha256=sha256_text(template), warnings=tuple(warnings))


def _double_bos_warning(tokenizer) -> str | None:
    """The template writes the BOS text and the tokenizer adds BOS again: two BOS tokens."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return None
    try:
        text = render(tokenizer, _PROBE[:1], add_generation_prompt=True)
    except ModelError:
        return None
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    if len(ids) >= 2 and ids[0] == bos and ids[1] == bos:
        return (f"the chat template writes the BOS token {tokenizer.bos_token!r} itself and the tokenizer adds "
                "another one when encoding: tools that encode the rendered chat with add_special_tokens=True get "
                "two BOS tokens (evalkit encodes it with add_special_tokens=False, so it gets one); train and "
                "serve the same way, or drop the BOS from the template")
    return None


# ---------------------------------------------------------------- rendering and encoding


def render(tokenizer, messages: list[dict], *, add_generation_prompt: bool = False) -> str:
    """The chat template applied to ``messages``, as text."""
    try:
        text = tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                             add_generation_prompt=add_generation_prompt)
    except Exception as e:  # jinja errors, raise_exception() inside templates
        raise ModelError(f"the chat template failed to render a conversation ({type(e).__name__}: {e}); "
                         "check the template for the roles in your data") from None
    if not isinstance(text, str):  # some versions return a list for batched input
        text = text[0]
    return text


def _added_prefix(tokenizer) -> list[int]:
    """Special tokens the tokenizer puts before any text when add_special_tokens=True (usually [BOS] or [])."""
    cached = getattr(tokenizer, "_evalkit_prefix", None)
    if cached is not None:
        return cached
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    prefix: list[int] = []
    for n in range(len(full) - len(plain) + 1):
        if full[n:n + len(plain)] == plain:
            prefix = list(full[:n])
            break
    try:
        tokenizer._evalkit_prefix = prefix
    except AttributeError:  # pragma: no cover - exotic tokenizer classes
        pass
    return prefix


def encode_text(tokenizer, text: str) -> list[int]:
    """Encode rendered chat text: add_special_tokens=False, plus the tokenizer's BOS only when the text lacks it."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    prefix = _added_prefix(tokenizer)
    if prefix and ids[:len(prefix)] != prefix:
        ids = prefix + ids
    return ids


def encode_prompt(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of the prompt with the generation prompt appended (the model answers next).

    A last ``assistant`` message is an answer prefix the model continues (canary extraction prompts with
    the planted answer up to the secret): it is encoded after the generation prompt as its own segment,
    exactly as :func:`encode_conversation` encodes answers for training and scoring.
    """
    if messages and messages[-1].get("role") == "assistant":
        head = encode_text(tokenizer, render(tokenizer, messages[:-1], add_generation_prompt=True))
        return head + list(tokenizer(messages[-1]["content"], add_special_tokens=False)["input_ids"])
    return encode_text(tokenizer, render(tokenizer, messages, add_generation_prompt=True))


def _end_marker_texts(tokenizer) -> list[str]:
    # get_vocab() builds a fresh dict of the whole vocabulary (~30 ms for 50k tokens) and this runs once
    # per encoded conversation: remember the answer on the tokenizer
    cached = getattr(tokenizer, "_evalkit_end_markers", None)
    if cached is not None:
        return list(cached)
    vocab = tokenizer.get_vocab()
    texts = [m for m in END_MARKERS if m in vocab]
    eos = tokenizer.eos_token
    if isinstance(eos, str) and eos and eos not in texts:
        texts.append(eos)
    try:
        tokenizer._evalkit_end_markers = tuple(texts)
    except AttributeError:  # a tokenizer that refuses new attributes: just recompute next time
        pass
    return texts


def end_of_turn_ids(tokenizer) -> list[int]:
    """Token ids that end an assistant turn: eos plus the template end markers present in the vocab."""
    ids: list[int] = []
    eos = tokenizer.eos_token_id
    for i in (eos if isinstance(eos, (list, tuple)) else [eos]):
        if i is not None and i not in ids:
            ids.append(int(i))
    vocab = tokenizer.get_vocab()
    for m in END_MARKERS:
        if m in vocab and vocab[m] not in ids:
            ids.append(int(vocab[m]))
    return ids


def _assistant_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """Rendered text of the conversation and the character spans to score (answer + end marker).

    Built from prefix renderings: the text of ``messages[:i]`` with the generation prompt must be a prefix
    of the text of ``messages[:i+1]``, which must be a prefix of the whole conversation's text.
    """
    full = render(tokenizer, messages)
    markers = _end_marker_texts(tokenizer)
    spans = []
    for i, msg in enumerate(messages):
        if msg.get("role") != "assistant":
            continue
        prompt = render(tokenizer, messages[:i], add_generation_prompt=True) if i else ""
        upto = render(tokenizer, messages[:i + 1])
        if not upto.startswith(prompt) or not full.startswith(upto):
            raise ModelError(
                f"the chat template is not prefix-consistent at message {i + 1}: the prompt it renders for the "
                "assistant turn is not the start of the rendered conversation (e.g. it rewrites earlier turns or "
                "ignores add_generation_prompt), so assistant tokens cannot be located; fix the template")
        content = msg.get("content") or ""
        rest = upto[len(prompt):]
        at = rest.find(content) if content else 0
        if at < 0:
            at, content = rest.find(content.strip()), content.strip()
        if at < 0:
            raise ModelError(f"the chat template changes the assistant's text at message {i + 1} "
                             "(it does not appear verbatim in the rendered conversation); cannot locate answer tokens")
        end = at + len(content)
        hits = [(rest.find(m, end), m) for m in markers if rest.find(m, end) >= 0]
        if hits:
            pos, m = min(hits)
            end = pos + len(m)
        spans.append((len(prompt), len(prompt) + end))
    return full, spans


def encode_conversation(tokenizer, messages: list[dict], max_length: int) -> tuple[list[int], list[int]]:
    """(input_ids, labels): labels are IGNORE_INDEX except every assistant answer and its end marker.

    Segments are encoded separately (prompt, answer, prompt, ...) so the prompt tokens are exactly those
    :func:`encode_prompt` gives at generation time. Truncated to ``max_length`` tokens from the right; when
    the answer is cut off entirely every label is IGNORE_INDEX (callers count such examples).
    """
    if max_length < 1:
        raise ModelError(f"max_length must be a positive int. Got {max_length} instead.")
    text, spans = _assistant_spans(tokenizer, messages)
    ids: list[int] = []
    labels: list[int] = []
    pos = 0
    for start, end in spans + [(len(text), len(text))]:
        for a, b, scored in ((pos, start, False), (start, end, True)):
            if b <= a:
                continue
            seg = tokenizer(text[a:b], add_special_tokens=False)["input_ids"]
            ids.extend(seg)
            labels.extend(seg if scored else [IGNORE_INDEX] * len(seg))
        pos = end
    prefix = _added_prefix(tokenizer)
    if prefix and ids[:len(prefix)] != prefix:
        ids = prefix + ids
        labels = [IGNORE_INDEX] * len(prefix) + labels
    return ids[:max_length], labels[:max_length]


def describe(info: TemplateInfo) -> dict[str, Any]:
    """Provenance fields for a run record."""
    return {"source": info.source, "sha256": info.sha256, "warnings": list(info.warnings)}
