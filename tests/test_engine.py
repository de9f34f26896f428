"""One engine, many adapters: switching, merging, refusals, and the cache (hits, resume, per-adapter keys)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from evalkit.runtime import generate as G
from evalkit.cache import Cache
from evalkit.runtime.chat_templates import encode_prompt
from evalkit.runtime.engine import Engine, ScoredExample
from evalkit.errors import ModelError

SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PROMPTS = [
    [{"role": "user", "content": "I drive to work every day and want to cut emissions."}],
    [{"role": "user", "content": "Cups?"}],
    [{"role": "user", "content": "텀블러를 사용해 보세요?"}],
    [{"role": "user", "content": "Meatless Mondays are an easy start. What else?"}],
    [{"role": "user", "content": "LED bulbs"}],
    [{"role": "user", "content": "Unplug standby devices and switch to LED bulbs to save energy?"}],
]
CONVS = [p + [{"role": "assistant", "content": "Try the Car-free commute week."}] for p in PROMPTS[:3]]
GEN = dict(max_new_tokens=6, progress=False)


def _make_adapter(base: Path, out: Path, seed: int, modules=SEVEN) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    # init_lora_weights=False: random A and B, so the adapter really changes the outputs
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=list(modules), init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(model, cfg).save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture(scope="module")
def adapters(tiny_llama, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {"a": _make_adapter(tiny_llama, root / "a", 1), "b": _make_adapter(tiny_llama, root / "b", 2)}


@pytest.fixture(scope="module")
def engine(tiny_llama) -> Engine:
    return Engine(str(tiny_llama), device="cpu", cache=False)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _texts(gens):
    return [g[0].text for g in gens]


def test_one_base_load_many_adapters(tiny_llama, adapters, monkeypatch):
    import peft
    import transformers

    loads = {"base": 0, "wrap": 0}
    loaded_dirs: list[str] = []
    real_base = transformers.AutoModelForCausalLM.from_pretrained
    real_wrap = peft.PeftModel.from_pretrained
    real_load = peft.PeftModel.load_adapter

    def count(name, fn):
        def wrapper(*a, **kw):
            loads[name] += 1
            return fn(*a, **kw)
        return wrapper

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", count("base", real_base))
    monkeypatch.setattr(peft.PeftModel, "from_pretrained", count("wrap", real_wrap))

    def load_adapter(self, model_id, *a, **kw):  # PeftModel.from_pretrained calls it too
        loaded_dirs.append(Path(model_id).name)
        return real_load(self, model_id, *a, **kw)

    monkeypatch.setattr(peft.PeftModel, "load_adapter", load_adapter)

    eng = Engine(str(tiny_llama), device="cpu", cache=False)
    base = _texts(eng.generate(PROMPTS[:3], **GEN))
    assert eng.use(adapters["a"]).startswith("a_")
    a1 = _texts(eng.generate(PROMPTS[:3], **GEN))
    eng.use(adapters["b"])
    b1 = _texts(eng.generate(PROMPTS[:3], **GEN))
    eng.use(adapters["a"])
    a2 = _texts(eng.generate(PROMPTS[:3], **GEN))
    assert eng.use(None) == "base" and eng.active_adapter_hash is None
    base2 = _texts(eng.generate(PROMPTS[:3], **GEN))

    assert a1 != base and b1 != base and a1 != b1
    assert a2 == a1 and base2 == base  # switching back reproduces
    assert loads == {"base": 1, "wrap": 1}  # the base loaded once, wrapped once
    assert loaded_dirs == ["a", "b"]  # each adapter read once


def test_scores_differ_by_adapter_and_with_base(engine, adapters):
    engine.use(None)
    base = engine.score(CONVS, progress=False)
    assert all(isinstance(s, ScoredExample) and s.base is None for s in base)
    engine.use(adapters["a"])
    both = engine.score(CONVS, with_base=True, progress=False)
    for b, s in zip(base, both):
        assert s.base.nll == pytest.approx(b.target.nll, abs=1e-6)  # adapters disabled, not reloaded
        assert abs(s.target.nll - s.base.nll) > 1e-4
        assert s.target.n_tokens == b.target.n_tokens
    engine.use(None)


def test_merge_gives_the_same_outputs(tiny_llama, adapters, engine):
    merged = Engine(str(tiny_llama), device="cpu", cache=False, merge=True)
    before = {k: v.clone() for k, v in merged.model.state_dict().items()}
    for eng in (engine, merged):
        eng.use(adapters["a"])
    assert _texts(merged.generate(PROMPTS, **GEN)) == _texts(engine.generate(PROMPTS, **GEN))
    unmerged = engine.score(CONVS, with_base=True, progress=False)
    for m, u in zip(merged.score(CONVS, with_base=True, progress=False), unmerged):
        np.testing.assert_allclose(m.target.logprobs, u.target.logprobs, atol=1e-4)
        np.testing.assert_allclose(m.base.logprobs, u.base.logprobs, atol=1e-4)
    # unmerged after the work: the LoRA layers are back to separate weights
    from peft.tuners.lora import LoraLayer

    assert not any(mod.merged for mod in merged.model.modules() if isinstance(mod, LoraLayer))
    base_after = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
                  for k, v in merged.model.state_dict().items() if "lora_" not in k}
    assert base_after.keys() == before.keys()
    assert all(torch.equal(before[k], base_after[k]) for k in before)  # base weights restored bit for bit
    engine.use(None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_engine_on_cuda_in_bf16(tiny_llama, adapters, engine):
    gpu = Engine(str(tiny_llama), cache=False)  # auto: cuda + bfloat16
    assert gpu.device.type == "cuda" and gpu.dtype == torch.bfloat16
    base = _texts(gpu.generate(PROMPTS, **GEN))
    gpu.use(adapters["a"])
    with_a = gpu.score(CONVS, with_base=True, progress=False)
    gens_a = gpu.generate(PROMPTS, **GEN)
    assert all(len(g) == 1 and g[0].n_tokens <= 6 for g in gens_a)
    gpu.use(None)
    assert _texts(gpu.generate(PROMPTS, **GEN)) == base
    engine.use(adapters["a"])
    cpu = engine.score(CONVS, with_base=True, progress=False)
    engine.use(None)
    for g, c in zip(with_a, cpu):  # bf16 on the GPU vs fp32 on the CPU: close, not equal
        assert g.target.n_tokens == c.target.n_tokens
        assert g.target.nll == pytest.approx(c.target.nll, abs=0.05)
        assert g.base.nll == pytest.approx(c.base.nll, abs=0.05)
    merged = Engine(str(tiny_llama), cache=False, merge=True)
    before = [p.detach().clone() for p in merged.model.parameters()]
    merged.use(adapters["a"])
    for m, u in zip(merged.score(CONVS, with_base=True, progress=False), with_a):
        assert m.target.nll == pytest.approx(u.target.nll, abs=0.05)
    merged.use(None)
    after = [p for n, p in merged.model.named_parameters() if "lora_" not in n]
    assert all(torch.equal(a, b) for a, b in zip(before, after))  # bf16 merge/unmerge left the base intact


def test_adapter_of_another_base_is_refused(engine, adapters, tmp_path):
    bad = _copy(adapters["a"], tmp_path / "other")
    (bad / "evalkit.json").write_text(json.dumps({"base": {"identity": "Mistral-7B-v0.3", "content_hash": "f" * 64}}))
    with pytest.raises(ModelError, match=r"Mistral-7B-v0\.3.*" + engine.base_ref.identity.split(" ")[0]):
        engine.use(bad)
    ok = _copy(adapters["a"], tmp_path / "same")
    meta = {"base": {"identity": "x", "content_hash": engine.base_ref.content_hash}}
    (ok / "evalkit.json").write_text(json.dumps(meta))
    engine.use(ok)
    engine.use(None)


def test_adapter_folder_problems(engine, adapters, tmp_path):
    with pytest.raises(ModelError, match="no such folder"):
        engine.use(tmp_path / "missing")
    noconf = _copy(adapters["a"], tmp_path / "noconf")
    (noconf / "adapter_config.json").unlink()
    with pytest.raises(ModelError, match="no adapter_config.json"):
        engine.use(noconf)

    corrupt = _copy(adapters["a"], tmp_path / "corrupt")
    data = (corrupt / "adapter_model.safetensors").read_bytes()
    (corrupt / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="not a readable safetensors file") as e:
        engine.use(corrupt)
    assert "\n" not in str(e.value)

    wrong = _copy(adapters["a"], tmp_path / "wrong")
    cfg = json.loads((wrong / "adapter_config.json").read_text())
    cfg["target_modules"] = ["c_attn", "q_proj"]
    (wrong / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"c_attn.*it has: down_proj, gate_proj, k_proj"):
        engine.use(wrong)
    engine.use(None)


def test_pickle_adapter_refused_unless_allowed(engine, adapters, tmp_path):
    import torch
    from safetensors.torch import load_file

    pkl = _copy(adapters["b"], tmp_path / "pkl")
    state = load_file(pkl / "adapter_model.safetensors")
    (pkl / "adapter_model.safetensors").unlink()
    torch.save(state, pkl / "adapter_model.bin")
    with pytest.raises(ModelError, match="adapter_model.bin.*--allow-pickle"):
        engine.use(pkl)
    engine.use(pkl, allow_pickle=True)
    from_pickle = _texts(engine.generate(PROMPTS[:2], **GEN))
    engine.use(adapters["b"])
    assert from_pickle == _texts(engine.generate(PROMPTS[:2], **GEN))
    engine.use(None)


# ---------------------------------------------------------------- the cache


def _count_rows(monkeypatch, fail_after: int | None = None) -> list[int]:
    """Count rows decoded by generate; optionally raise (a fake kill) after `fail_after` batches."""
    real = G._generate_batch
    batches: list[int] = []

    def spy(model, rows, *a, **kw):
        if fail_after is not None and len(batches) >= fail_after:
            raise KeyboardInterrupt("killed")
        batches.append(len(rows))
        return real(model, rows, *a, **kw)

    monkeypatch.setattr(G, "_generate_batch", spy)
    return batches


def test_generation_cache_hit_miss_and_resume(tiny_llama, adapters, tmp_path, monkeypatch):
    eng = Engine(str(tiny_llama), device="cpu", cache=Cache(tmp_path / "runs"))
    assert len(eng.cache) == 1  # the chat template info (read back instead of loading the tokenizer)
    with monkeypatch.context() as m:
        _count_rows(m, fail_after=1)
        with pytest.raises(KeyboardInterrupt):
            eng.generate(PROMPTS, batch_size=2, **GEN)
    assert len(eng.cache) == 1 + 2  # the first batch was stored whole before the "kill"

    with monkeypatch.context() as m:
        rows = _count_rows(m)
        resumed = eng.generate(PROMPTS, batch_size=2, **GEN)
    assert sum(rows) == 4  # only the 4 missing prompts were computed

    with monkeypatch.context() as m:
        rows = _count_rows(m)
        again = eng.generate(PROMPTS, batch_size=2, **GEN)
    assert rows == [] and again == resumed  # all hits

    fresh = Engine(str(tiny_llama), device="cpu", cache=False).generate(PROMPTS, batch_size=3, **GEN)
    assert resumed == fresh  # cached answers equal uncached ones

    # another adapter: other keys, computed anew; then cached per adapter
    eng.use(adapters["a"])
    with monkeypatch.context() as m:
        rows = _count_rows(m)
        with_a = eng.generate(PROMPTS, batch_size=3, **GEN)
    assert sum(rows) == len(PROMPTS) and with_a != resumed
    # other settings: other keys
    with monkeypatch.context() as m:
        rows = _count_rows(m)
        eng.generate(PROMPTS[:1], max_new_tokens=3, progress=False)
    assert sum(rows) == 1


def test_score_cache_hits_and_base_shared_across_adapters(tiny_llama, adapters, tmp_path, monkeypatch):
    import evalkit.runtime.engine as E

    eng = Engine(str(tiny_llama), device="cpu", cache=Cache(tmp_path / "runs"))
    seen: list[int] = []
    real = E._score

    def spy(model, tok, convs, **kw):
        seen.append(len(convs))
        return real(model, tok, convs, **kw)

    monkeypatch.setattr(E, "_score", spy)
    eng.use(adapters["a"])
    first = eng.score(CONVS, with_base=True, progress=False)
    assert seen == [3, 3]  # target, then base
    second = eng.score(CONVS, with_base=True, progress=False)
    assert seen == [3, 3]
    for x, y in zip(first, second):
        assert x.target == y.target and x.base == y.base  # arrays survive the cache bit for bit
    eng.use(adapters["b"])
    eng.score(CONVS, with_base=True, progress=False)
    assert seen == [3, 3, 3]  # b's own scores; the base scores were cached under the base alone


def test_describe(engine):
    d = engine.describe()
    assert d["base_hash"] == engine.base_ref.content_hash and d["chat_template"]["source"] == "tokenizer"
    assert d["device"] == "cpu" and d["dtype"] == "float32"


def test_fully_cached_run_loads_no_tokenizer_model_or_torch(tiny_llama, adapters, tmp_path):
    """A second engine on a warm cache answers from it without loading the tokenizer or the model, and a
    fresh process doing the same imports neither torch nor transformers (their start-up is seconds)."""
    import subprocess
    import sys

    cache = Cache(tmp_path / "runs")
    cold = Engine(str(tiny_llama), device="cpu", cache=cache)
    cold.use(adapters["a"])
    gens = cold.generate(PROMPTS[:2], **GEN)
    scores = cold.score(CONVS, with_base=True, progress=False)
    sizes = (cold.prompt_lengths(PROMPTS), cold.conversation_lengths(CONVS), cold.text_lengths(["a b", "c"]))
    warm = Engine(str(tiny_llama), device="cpu", cache=cache)
    warm.use(adapters["a"])
    assert warm.generate(PROMPTS[:2], **GEN) == gens and warm.template == cold.template
    assert all(x.target == y.target and x.base == y.base
               for x, y in zip(warm.score(CONVS, with_base=True, progress=False), scores))
    assert (warm.prompt_lengths(PROMPTS), warm.conversation_lengths(CONVS), warm.text_lengths(["a b", "c"])) == sizes
    assert sizes[0] == [len(encode_prompt(cold.tokenizer, p)) for p in PROMPTS]  # the cached sizes are the real ones
    assert warm._tokenizer is None and warm._model is None
    code = (f"import sys; from pathlib import Path; from evalkit.cache import Cache; "
            f"from evalkit.runtime.engine import Engine; "
            f"e = Engine({str(tiny_llama)!r}, device='cpu', cache=Cache(Path({str(tmp_path / 'runs')!r}))); "
            f"e.use(Path({str(adapters['a'])!r})); e.generate({PROMPTS[:2]!r}, **{GEN!r}); "
            f"e.score({CONVS!r}, with_base=True, progress=False); e.prompt_lengths({PROMPTS!r}); "
            f"e.conversation_lengths({CONVS!r}); e.text_lengths(['a b', 'c']); "
            f"print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_score_dtype_bf16_is_its_own_cache_entry_and_recorded(tiny_llama, adapters, tmp_path, monkeypatch):
    """--score-dtype bfloat16: scores within the documented tolerance of float32 but not equal to them (so
    a float32 cache entry must never answer for bf16, nor the reverse); generation unchanged; recorded."""
    from evalkit.runtime import loss as L

    cache = Cache(tmp_path / "runs")
    fp32 = Engine(str(tiny_llama), device="cpu", cache=cache)
    bf16 = Engine(str(tiny_llama), device="cpu", cache=cache, score_dtype="bfloat16")
    for e in (fp32, bf16):
        e.use(adapters["a"])
    a = fp32.score(CONVS, with_base=True, progress=False)
    b = bf16.score(CONVS, with_base=True, progress=False)  # same cache: must compute, not reuse a's entries
    for x, y in zip(a, b):
        for s, t in ((x.target, y.target), (x.base, y.base)):
            assert not np.array_equal(s.logprobs, t.logprobs)
            assert np.abs(s.logprobs - t.logprobs).max() <= L.BF16_TOKEN_TOL
            assert abs(s.nll - t.nll) <= L.BF16_NLL_TOL
    assert bf16.describe()["score_dtype"] == "bfloat16" and "score_dtype" not in fp32.describe()
    assert _texts(fp32.generate(PROMPTS, **GEN)) == _texts(bf16.generate(PROMPTS, **GEN))
    # the model's own dtype is no option: nothing changes, and the keys stay those of a plain run
    assert Engine(str(tiny_llama), device="cpu", cache=False, score_dtype="float32").score_dtype is None
    with pytest.raises(ModelError, match="score_dtype"):
        Engine(str(tiny_llama), device="cpu", cache=False, score_dtype="float16")


def test_score_dtype_bf16_warns_on_a_cpu_without_native_bf16(tiny_llama, monkeypatch):
    import evalkit.runtime.engine as E

    monkeypatch.setattr(E, "cpu_bf16_flags", lambda: [])
    slow = Engine(str(tiny_llama), device="cpu", cache=False, score_dtype="bfloat16")
    assert any("no native bf16" in w and "drop the option" in w for w in slow.warnings)
    monkeypatch.setattr(E, "cpu_bf16_flags", lambda: ["avx512_bf16"])
    fast = Engine(str(tiny_llama), device="cpu", cache=False, score_dtype="bfloat16")
    assert not any("bf16" in w for w in fast.warnings)
    assert not any("bf16" in w for w in Engine(str(tiny_llama), device="cpu", cache=False).warnings)
