"""2D-ALiBi / X-ALiBi: slopes, published values, bit-exactness against the published loop."""

from __future__ import annotations

import math

import pytest
import torch

from backend.models import ModelConfig, alibi_bias, alibi_bias_between, alibi_slopes, build_model
from backend.models.alibi import AlibiBias, reference_alibi_loop

# The spec's slope table for 16 heads: m_h = 2^(-h/2).
SPEC_SLOPES_16 = [0.70710678, 0.5, 0.35355339, 0.25, 0.17677670, 0.125, 0.08838835, 0.0625,
                  0.04419417, 0.03125, 0.02209709, 0.015625, 0.01104854, 0.0078125, 0.00552427, 0.00390625]


def test_slopes_for_sixteen_heads_match_the_spec_table() -> None:
    slopes = alibi_slopes(16)
    assert slopes.dtype == torch.float32
    assert torch.allclose(slopes, torch.tensor(SPEC_SLOPES_16), rtol=0, atol=1e-7)
    exact = torch.tensor([2.0 ** (-h / 2) for h in range(1, 17)], dtype=torch.float32)
    assert torch.equal(slopes, exact)


def test_slopes_for_non_power_of_two_heads_use_the_alibi_interleave() -> None:
    # 6 heads: the 4-head slopes 2^-2, 2^-4, 2^-6, 2^-8, then every other 8-head slope (2^-1, 2^-3).
    assert alibi_slopes(6).tolist() == [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3]
    # 12 heads: the 8-head slopes 2^-1..2^-8, then 16-head slopes 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5.
    expected = [2.0**-h for h in range(1, 9)] + [2.0 ** -(h + 0.5) for h in range(4)]
    assert torch.equal(alibi_slopes(12), torch.tensor(expected, dtype=torch.float32))


def test_sample_bias_values_on_the_training_grid() -> None:
    bias = alibi_bias(15, 15, 16)
    assert bias.shape == (1, 16, 225, 225)
    # Neighbours in a row: distance 1, so the bias is minus the slope, exactly.
    assert bias[0, 0, 0, 1].item() == -alibi_slopes(16)[0].item()
    assert bias[0, 1, 0, 1].item() == -0.5
    # (0,0) -> (1,1), head 1: float32(sqrt 2) * float32(2^-0.5) is one float32 ulp below 1.
    # The spec prints it as -1.0; the published loop gives the same bits as we do.
    diagonal = bias[0, 0, 0, 16].item()
    assert diagonal == pytest.approx(-1.0, abs=6e-8)
    expected = -(torch.tensor(math.sqrt(2), dtype=torch.float32) * alibi_slopes(16)[0]).item()
    assert diagonal == expected
    # (0,0) -> (14,14) in the last head: -2^-8 * 14 sqrt 2.
    assert bias[0, 15, 0, 224].item() == pytest.approx(-(14 * math.sqrt(2)) / 256, rel=1e-6)
    assert torch.equal(bias[0, :, 3, 3], torch.zeros(16))
    assert torch.equal(bias, bias.transpose(-1, -2))


@pytest.mark.parametrize(("rows", "cols", "heads"), [(15, 15, 16), (5, 9, 16), (7, 4, 6)])
def test_vectorised_bias_equals_the_published_loop_bit_for_bit(rows: int, cols: int, heads: int) -> None:
    assert torch.equal(alibi_bias(rows, cols, heads), reference_alibi_loop(rows, cols, heads))


def test_subset_bias_equals_gathering_from_the_dense_bias() -> None:
    rows, cols, heads = 6, 9, 16
    dense = alibi_bias(rows, cols, heads)[0]
    generator = torch.Generator().manual_seed(0)
    q = torch.stack([torch.randperm(rows * cols, generator=generator)[:20] for _ in range(3)])
    k = torch.stack([torch.randperm(rows * cols, generator=generator)[:11] for _ in range(3)])
    subset = alibi_bias_between(q, k, cols, heads)
    assert subset.shape == (3, heads, 20, 11)
    for b in range(3):
        assert torch.equal(subset[b], dense[:, q[b]][:, :, k[b]])


def test_bias_is_cached_per_grid_and_dtype() -> None:
    first = alibi_bias(4, 5, 16)
    assert alibi_bias(4, 5, 16) is first
    assert alibi_bias(5, 4, 16) is not first
    half = alibi_bias(4, 5, 16, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16 and half.device.type == "cpu"
    lazy = AlibiBias(4, 5, 16)
    assert lazy.dense("cpu") is first


def test_bias_is_never_part_of_the_state_dict() -> None:
    model = build_model(ModelConfig(dim=32, heads=4, sar_depth=1, optical_depth=1, joint_depth=1))
    model(sar=torch.rand(1, 2, 16, 16), optical=torch.rand(1, 12, 16, 16))
    assert not list(model.buffers())
    assert all("alibi" not in key and "attn_bias" not in key for key in model.state_dict())
