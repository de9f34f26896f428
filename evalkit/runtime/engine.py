"""One engine, many adapters: load the base model once, switch LoRA adapters, generate and score.

    engine = Engine("default")                     # base model + tokenizer, loaded once
    engine.use(Path("runs/r16"))                   # wrap with PEFT, or switch to an already loaded adapter
    gens = engine.generate(items, max_new_tokens=128)
    scored = engine.score(conversations, with_base=True)    # .target / .base TokenScores each
    engine.use(None)                               # the plain base model (adapters disabled, not unloaded)

Every result goes through the :class:`evalkit.cache.Cache`, keyed by base hash, adapter hash, settings
and item, and is written batch by batch, so ``compare`` of N adapters re-run after a crash or with one
more adapter computes only what is missing.

``merge=True`` folds the active LoRA into the base weights for the duration of each call (PEFT
``merge_adapter`` / ``unmerge_adapter``): faster per token on large models, same outputs within float
tolerance. Because an unmerge in bf16 does not give back the base weights bit for bit (rounding), the
engine keeps a CPU copy of the weights it merges into and restores them afterwards: the base model is
never altered, whatever the number of merges.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Union

from ..cache import Cache, cache_key
from ..engines.base import Generation, ScoredExample, TokenScores
from ..engines.results_cache import (cached_compute, gen_from_json, gen_to_json, length_batches, messages_of,
                                     scores_from_json, scores_to_json)
from ..errors import ModelError
from ..io import sha256_file
from .chat_templates import TemplateInfo, encode_conversation, encode_prompt
from .generate import generate as _generate
from .loss import SCORE_FORMAT
from .loss import score_conversations as _score
from .. import defaults
from ..records import read_adapter_record
from .models import (BaseModelRef, adapter_hash, check_adapter_dir, cpu_bf16_flags, linear_module_names,
                     cpu_runtime, load_model, load_tokenizer, pick_device, resolve_base,
                     weight_module_names)

__all__ = ["Engine", "ScoredExample"]


class Engine:
    """The ``hf`` engine (:class:`evalkit.engines.base.Engine`): a base model and tokenizer loaded once, with
    LoRA adapters switched in and out.

    ``cache``: a :class:`Cache` (None: the default ``$EVALKIT_CACHE/runs``; False: no caching).
    ``dp``: a :class:`evalkit.runtime.data_parallel.DataParallel` to shard the work over processes.
    """

    name = "hf"
    can_score = True

    def __init__(self, base: Union[str, BaseModelRef, None] = None, *, device=None, dtype=None,
                 trust_remote_code: bool = False, chat_template_from_config: bool = False,
                 cache: Union[Cache, None, bool] = None, merge: bool = False, allow_pickle: bool = False,
                 dp=None, score_dtype: Optional[str] = None):
        self.base_ref = base if isinstance(base, BaseModelRef) else resolve_base(base, allow_pickle=allow_pickle)
        self.cache: Optional[Cache] = None if cache is False else (Cache() if cache in (None, True) else cache)
        # The tokenizer and the model are loaded on first use: a fully cached run never loads them, and
        # imports neither torch nor transformers (start-up of seconds). What the cache keys need is
        # decided now without them: the chat template (itself cached, see _template_info) and the
        # device/dtype (cpu_runtime when certain without torch).
        self._tokenizer = None
        self._tokenizer_options = dict(chat_template_from_config=chat_template_from_config,
                                       trust_remote_code=trust_remote_code)
        self.template = self._template_info()
        quick = cpu_runtime(device) if dtype is None else None
        if quick is not None:
            self._device, self.dtype = None, quick[1]
            self._runtime = "/".join(quick)
        else:
            self._device, default_dtype = pick_device(device)
            self.dtype = dtype or default_dtype
            self._runtime = f"{self._device.type}/{str(self.dtype).replace('torch.', '')}"
        self._trust_remote_code = trust_remote_code
        self._model = None
        self._base_modules: list[str] = []
        self.merge = merge
        # --score-dtype bfloat16: the decoder body of teacher-forced scoring in bf16 matmuls (loss.body_precision);
        # None when it equals the model's dtype (then nothing changes, cache keys included)
        if score_dtype not in (None, "float32", "bfloat16"):
            raise ModelError(f"The 'score_dtype' parameter must be 'float32' or 'bfloat16'. Got {score_dtype!r} instead.")
        model_dtype = str(self.dtype).replace("torch.", "")
        self.score_dtype = score_dtype if score_dtype not in (None, model_dtype) else None
        if self.score_dtype == "float32":
            raise ModelError(f"--score-dtype float32: the model runs in {model_dtype} on {self._runtime.split('/')[0]}; "
                             "scoring cannot be more precise than the loaded weights (drop the option)")
        self._warnings: tuple[str, ...] = ()
        if self.score_dtype == "bfloat16" and self._runtime.startswith("cpu/") and not cpu_bf16_flags():
            self._warnings = ("--score-dtype bfloat16: this CPU has no native bf16 (no avx512_bf16 or amx_bf16 in "
                              "/proc/cpuinfo), so torch emulates it and scoring gets slower, not faster; drop the "
                              "option on this machine",)
        self.active_adapter_hash: Optional[str] = None  # None: the base model
        self.active_adapter_name: str = "base"
        self._adapters: dict[str, str] = {}  # adapter hash -> PEFT adapter name (loaded)
        self._pending: dict[str, tuple[Path, Path]] = {}  # adapter hash -> (folder, weights), not loaded yet
        self._merged: Optional[tuple[str, list]] = None  # (adapter name, saved base weights) while merged
        self.progress_label = ""  # e.g. "[2/3] seedlike · ": names the target on the progress display
        self.dp = dp

    @property
    def version(self) -> str:
        """The libraries that compute the numbers (part of every cache key and of RunRecord.engine)."""
        return ", ".join(f"{d} {importlib.metadata.version(d)}" for d in ("transformers", "peft", "torch"))

    @property
    def device(self):
        if self._device is None:
            self._device = pick_device("cpu")[0]
        return self._device

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.base_ref, **self._tokenizer_options)
        return self._tokenizer

    def _template_info(self) -> TemplateInfo:
        """The chat template in use: read from the cache when these tokenizer files were seen before,
        else from the loaded tokenizer (and cached). Keyed by the content of every non-weight file of
        the base folder (tokenizer files, templates, configs) and the template option."""
        folder = Path(self.base_ref.path)
        files = {f.name: sha256_file(f) for f in sorted(folder.iterdir())
                 if f.is_file() and f.suffix in (".json", ".jinja", ".txt", ".model") and not f.name.startswith(".")}
        key = cache_key("template", self.base_ref.content_hash, None,
                        {"from_config": self._tokenizer_options["chat_template_from_config"]}, files)
        hit = self.cache.get_many([key]).get(key) if self.cache is not None else None
        if hit is not None:
            return TemplateInfo(hit["template"], hit["source"], hit["sha256"], tuple(hit["warnings"]))
        info = self.tokenizer.evalkit_template
        if self.cache is not None:
            self.cache.put_many([(key, {"template": info.template, "source": info.source, "sha256": info.sha256,
                                        "warnings": list(info.warnings)})])
        return info

    @property
    def model(self):
        if self._model is None:
            self._model = load_model(self.base_ref, device=self.device, dtype=self.dtype,
                                     trust_remote_code=self._trust_remote_code)
            self._base_modules = linear_module_names(self._model)
        return self._model

    @model.setter
    def model(self, value) -> None:
        self._model = value

    # ------------------------------------------------------------ adapters

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.template.warnings + self._warnings

    def linear_module_names(self) -> list[str]:
        self.model  # noqa: B018 (loads the model if needed)
        return list(self._base_modules)

    def use(self, adapter_dir: Optional[Path], *, allow_pickle: bool = False) -> str:
        """Make ``adapter_dir`` (None: the base model) the active target; returns its adapter name."""
        if adapter_dir is None:
            self.active_adapter_hash, self.active_adapter_name = None, "base"
            return "base"
        adapter_dir = Path(adapter_dir)
        weights = check_adapter_dir(adapter_dir, allow_pickle=allow_pickle)
        h = adapter_hash(adapter_dir)
        record = read_adapter_record(adapter_dir)
        meta_hash, meta_ident = (record.base.content_hash, record.base.identity) if record else (None, None)
        if meta_hash and meta_hash != self.base_ref.content_hash:
            raise ModelError(
                f"adapter {adapter_dir} was trained on base model {meta_ident or '?'} (hash {meta_hash[:12]}), but "
                f"the engine's base is {self.base_ref.identity} (hash {self.base_ref.content_hash[:12]}); pass the "
                "adapter's base with --base")
        if h not in self._adapters and h not in self._pending:
            self._check_weights(adapter_dir, weights)
            self._check_targets(adapter_dir)
            self._pending[h] = (adapter_dir, weights)  # loaded when first needed (see _ensure_loaded)
        self.active_adapter_hash, self.active_adapter_name = h, f"a_{h[:12]}"
        return self.active_adapter_name

    def _ensure_loaded(self, h: str) -> None:
        if h in self._pending:
            adapter_dir, weights = self._pending.pop(h)
            self._load_adapter(adapter_dir, weights, f"a_{h[:12]}")
            self._adapters[h] = f"a_{h[:12]}"

    def _load_adapter(self, adapter_dir: Path, weights: Path, name: str) -> None:
        self._unmerge()
        try:
            if not self._adapters:
                from peft import PeftModel

                self.model = PeftModel.from_pretrained(self.model, str(adapter_dir), adapter_name=name,
                                                       is_trainable=False)
            else:
                self.model.load_adapter(str(adapter_dir), adapter_name=name, is_trainable=False)
        except (ValueError, RuntimeError, KeyError, OSError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"adapter {adapter_dir}: cannot be loaded onto {self.base_ref.identity} "
                             f"({type(e).__name__}: {msg[:300]}); was it trained on this base model?") from None
        self.model.eval()

    @staticmethod
    def _check_weights(adapter_dir: Path, weights: Path) -> None:
        if weights.suffix != ".safetensors":
            return
        try:
            from safetensors import safe_open

            with safe_open(str(weights), framework="numpy") as f:  # header check only; "pt" would import torch
                for k in f.keys():
                    f.get_slice(k)
        except Exception as e:
            raise ModelError(f"adapter {adapter_dir}: {weights.name} is not a readable safetensors file "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); re-save or "
                             "re-train the adapter") from None

    def _check_targets(self, adapter_dir: Path) -> None:
        try:
            cfg = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelError(f"{adapter_dir}/adapter_config.json: not valid JSON ({e})") from None
        targets = cfg.get("target_modules")
        if not self._base_modules:  # model not loaded yet: read the names from the weight file headers
            self._base_modules = weight_module_names(self.base_ref) or linear_module_names(self.model)
        if isinstance(targets, list):
            # peft matches a target by suffix; 'all-linear' adapters store full module paths
            missing = sorted(t for t in targets if t.rsplit(".", 1)[-1] not in set(self._base_modules))
            if missing:
                raise ModelError(f"adapter {adapter_dir}: targets module(s) {', '.join(missing)} that "
                                 f"{self.base_ref.identity} does not have (it has: {', '.join(self._base_modules)}); "
                                 "was it trained on another base model?")

    @contextlib.contextmanager
    def _active(self) -> Iterator[None]:
        """The model as the active target: adapters disabled for base; with merge=True the adapter stays
        merged across calls (merging a 7B model costs seconds) until another target needs the weights."""
        if self.active_adapter_hash is None:
            with self._base_only():
                yield
            return
        self._ensure_loaded(self.active_adapter_hash)
        name = self.active_adapter_name
        if self.merge:
            if self._merged is None or self._merged[0] != name:
                self._unmerge()
                self.model.set_adapter(name)
                saved = self._snapshot_lora_bases(name)
                self.model.merge_adapter([name])
                self._merged = (name, saved)
        else:
            self.model.set_adapter(name)
        yield

    @contextlib.contextmanager
    def activated(self) -> Iterator[Any]:
        """The model with the active target switched in, for code that runs it itself (lm-eval's HFLM)."""
        with self._active():
            yield self.model

    def _unmerge(self) -> None:
        """Give the base weights back exactly (restoring saved copies, not subtracting the delta)."""
        if self._merged is not None:
            self.model.unmerge_adapter()
            self._restore(self._merged[1])
            self._merged = None

    def _snapshot_lora_bases(self, name: str) -> list:
        """Copies (on the CPU) of the base weights that merging ``name`` changes.

        ``unmerge_adapter`` subtracts the LoRA delta again, which in bf16 does not give back the original
        weights bit for bit; restoring these copies does, so merge=True never alters the base model.
        """
        from peft.tuners.lora import LoraLayer

        saved = []
        for module in self.model.modules():
            if isinstance(module, LoraLayer) and name in getattr(module, "lora_A", {}):
                weight = module.get_base_layer().weight
                saved.append((weight, weight.detach().to("cpu", copy=True)))
        return saved

    @staticmethod
    def _restore(saved: list) -> None:
        import torch

        with torch.no_grad():
            for weight, copy in saved:
                weight.copy_(copy.to(weight.device))

    # ------------------------------------------------------------ work

    def _settings(self, **kw) -> dict:
        return {**kw, "template": self.template.sha256, "runtime": self._runtime,
                "engine": f"{self.name} ({self.version})"}

    def _gen_settings(self, *, max_new_tokens: int, num_samples: int, do_sample: bool, temperature: float,
                      top_p: float, seed: int) -> dict:
        """The generation part of a cache key (sampling parameters only count when sampling): every engine's."""
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "seed": seed} if do_sample \
            else {"do_sample": False}
        return self._settings(max_new_tokens=max_new_tokens, num_samples=num_samples, **sampling)

    def _cached(self, kind: str, items: list[list[dict]], settings: dict, adapter: Optional[str],
                compute, to_json, from_json, *, chunk: int, label: str, show: bool = True, batches=None) -> list:
        if self.dp is not None and self.dp.world > 1:  # data parallel (runtime/data_parallel.py)
            return cached_compute(self.cache, kind, self.base_ref.content_hash, adapter, settings, items, compute,
                                  to_json, from_json, dp=self.dp, batches=batches)
        keys = [cache_key(kind, self.base_ref.content_hash, adapter, settings, m) for m in items]
        hits = self.cache.get_many(keys) if self.cache is not None else {}
        out: list = [from_json(hits[k]) if k in hits else None for k in keys]
        todo = [i for i, k in enumerate(keys) if k not in hits]
        if self.cache is not None:
            self.cache.stats["reused"] += len(items) - len(todo)
        if not todo:
            return out
        # Each chunk is exactly one batch of the plan a data-parallel run shards (``batches``: longest first in
        # tokens, ``chunk`` at a time), so 1 process and N processes pad and batch the same rows: identical
        # arithmetic, identical bytes (tests/engines/test_data_parallel.py).
        if batches is not None:
            todo = [todo[j] for b in batches([items[i] for i in todo]) for j in b]
        from ..console import progress

        with progress(f"{self.progress_label}{label}", total=len(todo), enabled=show) as bar:
            def run(positions: list[int]) -> None:
                indices = [todo[p] for p in positions]

                def on_batch(idx: list[int], results: list) -> None:
                    for j, r in zip(idx, results):
                        out[indices[j]] = r
                    if self.cache is not None:
                        self.cache.put_many([(keys[indices[j]], to_json(r)) for j, r in zip(idx, results)])
                    bar.update(len(idx))

                compute([items[i] for i in indices], on_batch)

            if self.cache is None:
                run(list(range(len(todo))))
            else:  # concurrent runs on one cache share the work (evalkit/cache.py)
                shared = self.cache.compute_shared([keys[i] for i in todo], run, chunk=chunk)
                for p, value in shared.items():
                    out[todo[p]] = from_json(value)
                bar.update(len(shared))
        return out

    def generate(self, items: Iterable[Any], *, max_new_tokens: int = defaults.MAX_NEW_TOKENS,
                 batch_size: int = defaults.BATCH_SIZE,
                 do_sample: bool = False, temperature: float = 0.7, top_p: float = 0.95, num_samples: int = 1,
                 seed: int = 0, progress: bool = True) -> list[list[Generation]]:
        """Answers of the active target to each item (PromptItem or messages); outer per item, inner per sample."""
        prompts = [messages_of(it) for it in items]
        settings = self._gen_settings(max_new_tokens=max_new_tokens, num_samples=num_samples, do_sample=do_sample,
                                      temperature=temperature, top_p=top_p, seed=seed)

        def compute(todo, on_batch):
            with self._active():
                _generate(self.model, self.tokenizer, todo, max_new_tokens=max_new_tokens, batch_size=batch_size,
                          do_sample=do_sample, temperature=temperature, top_p=top_p, num_samples=num_samples,
                          seed=seed, progress=False, on_batch=on_batch)

        per_batch = max(1, batch_size // (num_samples if do_sample else 1))  # as runtime/generate.py batches

        def batches(todo):
            return length_batches([len(encode_prompt(self.tokenizer, m)) for m in todo], per_batch)

        return self._cached("gen", prompts, settings, self.active_adapter_hash, compute, gen_to_json,
                            gen_from_json, chunk=per_batch, label="generate", show=progress, batches=batches)

    def score(self, conversations: Iterable[Any], *, with_base: bool = False, max_length: int = 512,
              batch_size: int = 8, progress: bool = True, moments: bool = False) -> list[ScoredExample]:
        """Teacher-forced assistant-token scores of each conversation under the active target.

        One :class:`ScoredExample` per conversation: ``.target`` under the active target and, with
        ``with_base=True``, ``.base`` under the base model (adapters disabled, nothing reloaded; cached under
        the base alone, so it is computed once for all adapters). ``moments=True`` adds the Min-K%++
        statistics (evalkit/runtime/loss.py).
        """
        convs = [messages_of(c) for c in conversations]
        precision = {"body_dtype": self.score_dtype} if self.score_dtype else {}
        settings = self._settings(max_length=max_length, format=SCORE_FORMAT, moments=moments, **precision)

        def run(adapter: Optional[str]) -> list[TokenScores]:
            def compute(todo, on_batch):
                import torch

                body_dtype = getattr(torch, self.score_dtype) if self.score_dtype else None
                with (self._active() if adapter is not None else self._base_only()):
                    _score(self.model, self.tokenizer, todo, max_length=max_length, batch_size=batch_size,
                           progress=False, moments=moments, body_dtype=body_dtype, on_batch=on_batch)

            return self._cached("score", convs, settings, adapter, compute, scores_to_json, scores_from_json,
                                chunk=batch_size, label="score" if adapter is not None else "score (base model)",
                                show=progress, batches=lambda todo: length_batches(
                                    [len(encode_conversation(self.tokenizer, m, max_length)[0]) for m in todo],
                                    batch_size))

        target = run(self.active_adapter_hash)
        if not with_base:
            return [ScoredExample(t) for t in target]
        base = target if self.active_adapter_hash is None else run(None)
        return [ScoredExample(t, b) for t, b in zip(target, base)]

    @contextlib.contextmanager
    def _base_only(self) -> Iterator[None]:
        self._unmerge()
        with (self.model.disable_adapter() if self._adapters else contextlib.nullcontext()):
            yield

    # ------------------------------------------------------------ input sizes (tokenizer only, no model load)

    def context_length(self) -> Optional[int]:
        """Positions the base model was built for (its config.json), or None when it does not say."""
        try:
            cfg = json.loads((Path(self.base_ref.path) / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        for c in (cfg, cfg.get("text_config") or {}):
            for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
                if isinstance(c.get(key), int) and c[key] > 0:
                    return int(c[key])
        return None

    def prompt_lengths(self, prompts: Iterable[Any]) -> list[int]:
        """Tokens of each chat prompt as generation sees it (template and generation prompt included)."""
        from .chat_templates import encode_prompt

        return self._token_counts("len-prompt", [messages_of(p) for p in prompts],
                                  lambda m: len(encode_prompt(self.tokenizer, m)))

    def conversation_lengths(self, conversations: Iterable[Any]) -> list[int]:
        """Tokens of each whole conversation as scoring sees it, before the cut at max_length."""
        from .chat_templates import encode_text, render

        return self._token_counts("len-conversation", [messages_of(c) for c in conversations],
                                  lambda m: len(encode_text(self.tokenizer, render(self.tokenizer, m))))

    def text_lengths(self, texts: Iterable[str]) -> list[int]:
        """Tokens of plain texts (no template), e.g. reference answers."""
        return self._token_counts("len-text", list(texts),
                                  lambda t: len(self.tokenizer(t, add_special_tokens=False)["input_ids"]))

    def _token_counts(self, kind: str, items: list, count) -> list[int]:
        """``count(item)`` of each item, cached like the results (same base and template): a fully cached
        run sizes itself (commands/_preflight.py) without loading the tokenizer, i.e. without transformers."""
        settings = {"template": self.template.sha256}
        keys = [cache_key(kind, self.base_ref.content_hash, None, settings, it) for it in items]
        hits = self.cache.get_many(keys) if self.cache is not None else {}
        out = [hits.get(k) for k in keys]
        missing = [i for i, v in enumerate(out) if v is None]
        for i in missing:
            out[i] = count(items[i])
        if self.cache is not None and missing:
            self.cache.put_many([(keys[i], out[i]) for i in missing])
        return [int(n) for n in out]

    def describe(self) -> dict:
        """Provenance for run records: base identity and hash, template, device and dtype."""
        return {"name": self.name, "version": self.version, "base_model": self.base_ref.identity, "base_hash": self.base_ref.content_hash,
                "base_spec": self.base_ref.spec, "chat_template": {"source": self.template.source,
                                                                    "sha256": self.template.sha256,
                                                                    "warnings": list(self.template.warnings)},
                "device": self._runtime.split("/")[0] if self._device is None else str(self._device),
                "dtype": str(self.dtype).replace("torch.", ""), "merge": self.merge,
                **({"score_dtype": self.score_dtype} if self.score_dtype else {})}
