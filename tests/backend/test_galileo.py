"""Galileo-nano encoder against the official outputs (shared/models/galileo-nano), loading, shipping.

Every case of ``reference_outputs.npz`` and of ``reference/*.npz`` goes through our encoder from its
stored normalised inputs: visible tokens within 1e-4, pooled and per-patch vectors within 1e-5,
token masks exact. Tolerances are those of spec section 10 (float32 vs float64 official: 3.5e-6).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.contract.bands import GALILEO_S2_BANDS, S1_BANDS
from backend.errors import UserError
from backend.models.galileo import (
    GALILEO_SPACE_TIME_BANDS,
    PRETRAINING_TOKEN_EXIT,
    GalileoEncoder,
    average_visible_tokens,
    galileo_ndvi,
    load_galileo,
    normalise_space_time,
    per_patch_visible_mean,
    resize_pinv,
    space_time_shift_div,
    spatial_encoding,
)
from tests.conftest import REPO_ROOT

OFFICIAL = REPO_ROOT.parent / "shared" / "models" / "galileo-nano"
SHIPPED = REPO_ROOT / "resources" / "models" / "galileo-nano.safetensors"
TOKEN_TOL, POOLED_TOL = 1e-4, 1e-5
KINDS = ("space_time", "space", "time", "static")
SPEC_CASES = ("s2ndvi_p8", "s2ndvi_p4", "s2_wrapper_p8", "s1s2_t2_partial_p8", "all_groups_p8",
              "all_groups_p8_token_exit", "s2ndvi_p8_exit0")
HELPER_CASES = ("s2_only", "s2_s1", "missing_groups", "multi_time")
HELPER_INPUTS = ("space_time_x", "space_x", "time_x", "static_x", "space_time_mask", "space_mask",
                 "time_mask", "static_mask", "months")

pytestmark = pytest.mark.needs(OFFICIAL / "encoder.pt")


@pytest.fixture(scope="module")
def official() -> GalileoEncoder:
    return load_galileo(OFFICIAL / "encoder.pt")


@pytest.fixture(scope="module")
def spec_npz() -> dict[str, np.ndarray]:
    with np.load(OFFICIAL / "reference_outputs.npz") as data:
        return dict(data)


def _tensors(arrays: list[np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(a) for a in arrays]


def _token_diff(outputs: tuple[torch.Tensor, ...], expected_tokens: list[np.ndarray],
                expected_masks: list[np.ndarray]) -> float:
    """Max |diff| over visible tokens of all kinds; the token masks must be identical."""
    worst = 0.0
    for i, (tokens, mask) in enumerate(zip(expected_tokens, expected_masks, strict=True)):
        np.testing.assert_array_equal(outputs[4 + i].numpy(), mask)
        visible = mask == 0
        if visible.any():
            worst = max(worst, float(np.abs(outputs[i].numpy()[visible] - tokens[visible]).max()))
    return worst


def _max_diff(ours: torch.Tensor, expected: np.ndarray) -> float:
    return float(np.abs(ours.numpy() - expected).max())


@pytest.mark.parametrize("case", SPEC_CASES)
def test_spec_reference_cases_match(official: GalileoEncoder, spec_npz: dict[str, np.ndarray],
                                    case: str) -> None:
    def get(key: str) -> np.ndarray:
        return spec_npz[f"{case}/{key}"]

    inputs = _tensors([get(f"input_{k}") for k in HELPER_INPUTS])
    options = {"token_exit_cfg": PRETRAINING_TOKEN_EXIT} if case.endswith("token_exit") else {}
    if case.endswith("exit0"):
        options["exit_after"] = 0
    with torch.no_grad():
        out = official(*inputs, patch_size=int(get("patch_size")), **options)
    tokens = _token_diff(out, [get(f"out_{k}") for k in KINDS], [get(f"out_{k}_mask") for k in KINDS])
    assert tokens <= TOKEN_TOL, f"{case}: tokens differ by {tokens:.2e}"
    assert _max_diff(average_visible_tokens(*out[:8]), get("pooled_average_tokens")) <= POOLED_TOL
    assert _max_diff(per_patch_visible_mean(*out[:8]), get("per_patch_masked_mean")) <= POOLED_TOL


@pytest.mark.parametrize("case", HELPER_CASES)
def test_helper_reference_cases_match_both_patch_sizes(official: GalileoEncoder, case: str) -> None:
    with np.load(OFFICIAL / "reference" / f"{case}.npz") as data:
        ref = dict(data)
    inputs = _tensors([ref[k] for k in HELPER_INPUTS])
    for p in (8, 4):
        with torch.no_grad():
            out = official(*inputs, patch_size=p)
            fast = official.embed_space_time(inputs[0], inputs[4], inputs[8], patch_size=p)
        tokens = _token_diff(out, [ref[f"p{p}_{k}_tokens"] for k in KINDS],
                             [ref[f"p{p}_{k}_token_mask"] for k in KINDS])
        assert tokens <= TOKEN_TOL, f"{case} p={p}: tokens differ by {tokens:.2e}"
        assert _max_diff(average_visible_tokens(*out[:8]), ref[f"p{p}_pooled"]) <= POOLED_TOL
        assert _max_diff(per_patch_visible_mean(*out[:8]), ref[f"p{p}_per_patch_pooled"]) <= POOLED_TOL
        # the fast path: only space-time groups, same per-patch vectors
        assert _max_diff(fast.flatten(1, 2), ref[f"p{p}_per_patch_pooled"]) <= POOLED_TOL


def test_intermediate_depths_match_debug_arrays(official: GalileoEncoder) -> None:
    """exit_after n without the final norm: block by block against the official states."""
    with np.load(OFFICIAL / "reference" / "s2_only.npz") as data:
        ref = dict(data)
    inputs = _tensors([ref[k] for k in HELPER_INPUTS])
    visible = ref["p8_space_time_token_mask"] == 0
    for n in range(4):
        with torch.no_grad():
            out = official(*inputs, patch_size=8, exit_after=n, add_layernorm_on_exit=False)
        expected = ref[f"debug_p8_exit_after_{n}_space_time_tokens"]
        assert np.abs(out[0].numpy()[visible] - expected[visible]).max() <= TOKEN_TOL, n


def test_embed_space_time_equals_forward_then_per_patch_mean(official: GalileoEncoder,
                                                            spec_npz: dict[str, np.ndarray]) -> None:
    """Different visible counts per sample (padding, key mask), S1, two time steps."""
    case = "s1s2_t2_partial_p8"

    def get(key: str) -> torch.Tensor:
        return torch.from_numpy(spec_npz[f"{case}/input_{key}"])

    with torch.no_grad():
        fast = official.embed_space_time(get("space_time_x"), get("space_time_mask"), get("months"))
    expected = spec_npz[f"{case}/per_patch_masked_mean"]
    assert fast.shape == (2, 2, 2, 128)
    assert _max_diff(fast.flatten(1, 2), expected) <= POOLED_TOL
    hidden = get("space_time_mask").clone()
    hidden[1, :8, :8] = 1  # one patch of sample 1 with no visible group at all
    with torch.no_grad():
        gap = official.embed_space_time(get("space_time_x"), hidden, get("months"))
    assert torch.isnan(gap[1, 0, 0]).all() and not torch.isnan(gap[0]).any()


def test_flexivit_pinv_kernel_and_spatial_table(official: GalileoEncoder,
                                                spec_npz: dict[str, np.ndarray]) -> None:
    for p in range(1, 8):
        assert _max_diff(resize_pinv(8, p), spec_npz[f"blocks/pinv_8_to_{p}"]) <= 1e-5, p
    kernel = official.space_time_embed["S2_RGB"].kernel(4).detach()
    assert _max_diff(kernel, spec_npz["blocks/S2_RGB_kernel_p4"]) <= 1e-5
    table = spatial_encoding(4, 4, 8.0, 32, "cpu")
    assert _max_diff(table, spec_npz["blocks/spatial_sincos_h4_gsdratio8"]) <= 1e-6


def test_normalisation_and_ndvi_reproduce_the_official_inputs(spec_npz: dict[str, np.ndarray]) -> None:
    shift, div = space_time_shift_div()
    np.testing.assert_allclose(shift, spec_npz["blocks/normalisation_space_time_shift"], rtol=1e-12,
                               atol=1e-9)
    np.testing.assert_allclose(div, spec_npz["blocks/normalisation_space_time_div"], rtol=1e-12)
    s2_bands = tuple(b for b in GALILEO_SPACE_TIME_BANDS if b not in S1_BANDS and b != "NDVI")
    assert s2_bands == GALILEO_S2_BANDS  # the contract's list (plugin side) says the same
    raw = spec_npz["s1s2_t2_partial_p8/input_space_time_raw"]
    assert raw.shape[-1] == len(GALILEO_SPACE_TIME_BANDS)
    red, nir = (GALILEO_SPACE_TIME_BANDS.index(b) for b in ("B04", "B08"))
    np.testing.assert_array_equal(galileo_ndvi(raw[..., red], raw[..., nir]), raw[..., -1])
    red_t, nir_t = torch.from_numpy(raw[..., red]), torch.from_numpy(raw[..., nir])
    np.testing.assert_array_equal(galileo_ndvi(red_t, nir_t), raw[..., -1])
    expected = spec_npz["s1s2_t2_partial_p8/input_space_time_x"]
    assert np.abs(normalise_space_time(raw) - expected).max() <= 1e-6
    as_tensor = normalise_space_time(torch.from_numpy(raw))
    assert as_tensor.dtype == torch.float32 and np.abs(as_tensor.numpy() - expected).max() <= 1e-6
    with np.load(OFFICIAL / "reference" / "s2_only.npz") as data:
        ours = normalise_space_time(data["space_time_x_unnormalized"])
        assert np.abs(ours - data["space_time_x"]).max() <= 1e-6


class _Payload:
    """Any class: unpickling it needs code, which weights_only refuses."""


def test_load_refuses_code_and_names_wrong_keys(tmp_path: Path, official: GalileoEncoder) -> None:
    assert not official.training
    evil = tmp_path / "evil.pt"
    torch.save({"blocks.0.norm1.weight": torch.zeros(128), "payload": _Payload()}, evil)
    with pytest.raises(UserError, match="refused"):
        load_galileo(evil)
    plain = tmp_path / "plain.pt"
    torch.save({"x": 1}, plain)
    with pytest.raises(UserError, match="not a Galileo encoder state dict"):
        load_galileo(plain)
    with pytest.raises(UserError, match="checkpoint not found"):
        load_galileo(tmp_path / "absent.pt")
    state = official.state_dict()
    state.pop("norm.bias")
    state["blocks.0.attn.q.weight"] = torch.zeros(64, 128)
    broken = tmp_path / "broken.pt"
    torch.save(state, broken)
    with pytest.raises(UserError, match=r"1 missing \(norm.bias\).*blocks.0.attn.q.weight \[64, 128\]"):
        load_galileo(broken)


def test_shipped_model_equals_official_and_is_reproducible(tmp_path: Path, official: GalileoEncoder) -> None:
    import scripts.convert_galileo as convert

    shipped = load_galileo(SHIPPED)
    assert not shipped.training
    official_state, shipped_state = official.state_dict(), shipped.state_dict()
    assert official_state.keys() == shipped_state.keys()
    assert all(torch.equal(official_state[k], shipped_state[k]) for k in official_state)
    config = json.loads(SHIPPED.with_suffix(".json").read_text(encoding="utf-8"))
    assert (config["architecture"], config["sensor"], config["licence"]) == ("galileo", "any", "MIT")
    assert (SHIPPED.parent / config["licence_file"]).read_bytes() == (OFFICIAL / "LICENSE").read_bytes()
    # the converter makes byte-identical files again (sorted safetensors header)
    for made in convert.convert(OFFICIAL, tmp_path):
        assert made.read_bytes() == (SHIPPED.parent / made.name).read_bytes(), made.name
