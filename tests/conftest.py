"""Session fixtures: tiny random-init Llama / Mistral models with a tiny tokenizer (no download).

The tokenizer is a byte-level BPE trained in-process on a few lines of eco text, with a ChatML
chat template (the same shape as SmolLM2's), so chat formatting, assistant-only loss masks and
generation run exactly as on the real model, only faster.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported (see evalkit/__init__.py)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "I drive to work every day and want to cut emissions.",
    "Try the Car-free commute week: take the bus or cycle for five days.",
    "Meatless Mondays are an easy start. Cook a lentil curry tonight.",
    "Carry a reusable cup and refuse disposable coffee cups for a month.",
    "텀블러를 사용해 보세요. 일회용 컵을 줄일 수 있어요.",
    "Unplug standby devices and switch to LED bulbs to save energy.",
]


def _train_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    fast.chat_template = CHATML_TEMPLATE
    fast.save_pretrained(out)


def _save_tiny_model(out: Path, arch: str) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    _train_tokenizer(out)
    tok = AutoTokenizer.from_pretrained(out)
    common = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                  tie_word_embeddings=False,
                  # std 0.2 (not 0.02): a frozen random lm_head needs logits with some range, or no LoRA
                  # can fit anything and "train to memorize" tests cannot work
                  initializer_range=0.2)
    torch.manual_seed(0 if arch == "llama" else 1)  # distinct weights, so the two bases hash differently
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    else:
        model = MistralForCausalLM(MistralConfig(sliding_window=None, **common))
    model.save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """Folder of a random-init 2-layer Llama (q/k/v/o/gate/up/down_proj) + tokenizer + chat template."""
    return _save_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_mistral(tmp_path_factory) -> Path:
    """Folder of a random-init 2-layer Mistral, the seed's architecture, at toy size."""
    return _save_tiny_model(tmp_path_factory.mktemp("tiny-mistral"), "mistral")


def _head(src: Path, dst: Path, n: int) -> Path:
    lines = [ln for ln in src.read_text(encoding="utf-8").splitlines() if ln.strip()][:n]
    dst.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dst


@pytest.fixture(scope="session")
def mini_data(tmp_path_factory) -> dict[str, Path]:
    """Small slices of the bundled eco data: 24 train, 8 val, 8 English + 4 Korean held-out prompts."""
    d = tmp_path_factory.mktemp("mini-data")
    return {
        "train": _head(REPO / "benchmarks/eco/train.jsonl", d / "train.jsonl", 24),
        "val": _head(REPO / "benchmarks/eco/val.jsonl", d / "val.jsonl", 8),
        "suite_en": _head(REPO / "prompts/eco_heldout_en.jsonl", d / "eco_heldout_en.jsonl", 8),
        "suite_ko": _head(REPO / "prompts/eco_heldout_ko.jsonl", d / "eco_heldout_ko.jsonl", 4),
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
