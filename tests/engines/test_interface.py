"""The engine interface: both in-process engines and the endpoint client implement it; the engine's name and
version are part of every cache key; --engine vllm without vLLM is one line, exit 2."""

from __future__ import annotations

import importlib.util

import pytest

from evalkit.cache import Cache
from evalkit.cli import main
from evalkit.engines import base as iface
from evalkit.runtime.engine import Engine

PROMPTS = [[{"role": "user", "content": "How do I cut emissions?"}], [{"role": "user", "content": "Cycle?"}]]


def test_hf_engine_implements_the_interface(tiny_llama):
    engine = Engine(str(tiny_llama), cache=False)
    assert isinstance(engine, iface.Engine)
    assert engine.name == "hf" and engine.describe()["name"] == "hf"
    assert engine.version.startswith("transformers ") and "peft " in engine.version


def test_cache_key_holds_engine_name_and_version(tiny_llama, tmp_path, monkeypatch):
    cache = Cache(tmp_path / "c")
    engine = Engine(str(tiny_llama), cache=cache)
    first = len(cache)  # the chat-template entry (Engine._template_info) is cached at construction
    engine.generate(PROMPTS, max_new_tokens=4, progress=False)
    assert len(cache) == first + 2
    engine.generate(PROMPTS, max_new_tokens=4, progress=False)
    assert len(cache) == first + 2  # same engine, same version: served from the cache
    monkeypatch.setattr(Engine, "version", property(lambda self: "transformers 0.0-other"))
    engine.generate(PROMPTS, max_new_tokens=4, progress=False)
    assert len(cache) == first + 4  # another version computed its own answers
    monkeypatch.setattr(Engine, "name", "other-engine")
    engine.generate(PROMPTS, max_new_tokens=4, progress=False)
    assert len(cache) == first + 6


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_engine_vllm_without_vllm_is_one_line(tiny_llama, tmp_path, capsys):
    code = main(["eval", "base", "--base", str(tiny_llama), "--engine", "vllm", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "vLLM is not installed" in err and "make vllm-env" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()
