"""CROMA architecture: outputs, any grid size, SDPA vs eager vs FlexAttention, token subsets."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from backend.errors import UserError
from backend.models import (
    ModalityConfig,
    ModelConfig,
    attention_backend,
    build_model,
    normalize,
    patchify,
    random_keep_indices,
    unpatchify,
)

TINY = dict(dim=32, heads=4, sar_depth=1, optical_depth=2, joint_depth=1)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(**TINY)).eval()


def _inputs(batch: int, height: int, width: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 2, height, width, generator=generator),
            torch.rand(batch, 12, height, width, generator=generator))


@pytest.mark.parametrize("modalities", [("sar",), ("optical",), ("sar", "optical")])
def test_outputs_for_each_modality_set(model: torch.nn.Module, modalities: tuple[str, ...]) -> None:
    sar, optical = _inputs(2, 24, 24)
    given = {"sar": sar, "optical": optical}
    with torch.no_grad():
        out = model(**{m: given[m] for m in modalities})
    expected = {f"{m}_{kind}" for m in modalities for kind in ("encodings", "pooled")}
    if len(modalities) == 2:
        expected |= {"joint_encodings", "joint_pooled"}
    assert set(out) == expected
    for name, value in out.items():
        assert value.dtype == torch.float32 and torch.isfinite(value).all()
        assert value.shape == ((2, 9, 32) if name.endswith("encodings") else (2, 32))
    if len(modalities) == 2:
        assert torch.allclose(out["joint_pooled"], out["joint_encodings"].mean(dim=1))


def test_only_needed_submodules_are_built() -> None:
    optical_only = build_model(ModelConfig(**TINY, modalities={"optical": ModalityConfig(["a", "b"])}))
    names = {name for name, _ in optical_only.named_children()}
    assert names == {"s2_encoder", "s2_GAP_FFN"}
    with pytest.raises(UserError, match="no sar encoder"):
        optical_only(sar=torch.rand(1, 2, 8, 8))


@pytest.mark.parametrize(("height", "width"), [(16, 40), (48, 24), (136, 136)])
def test_rectangular_and_larger_than_training_inputs_run(model: torch.nn.Module, height: int,
                                                         width: int) -> None:
    sar, optical = _inputs(1, height, width)
    with torch.no_grad():
        out = model(sar=sar, optical=optical)
    tokens = (height // 8) * (width // 8)
    assert out["joint_encodings"].shape == (1, tokens, 32)
    assert torch.isfinite(out["joint_encodings"]).all()


@pytest.mark.parametrize(("height", "width"), [(24, 24), (16, 40)])
def test_sdpa_matches_eager_published_maths(model: torch.nn.Module, height: int, width: int) -> None:
    sar, optical = _inputs(2, height, width)
    with torch.no_grad():
        with attention_backend("sdpa"):
            fast = model(sar=sar, optical=optical)
        with attention_backend("eager"):
            reference = model(sar=sar, optical=optical)
    for name in reference:
        assert (fast[name] - reference[name]).abs().max().item() < 1e-5, name


def test_flex_attention_matches_sdpa_on_cpu(model: torch.nn.Module) -> None:
    """FlexAttention runs eagerly on CPU (inference only); on CUDA it is compiled."""
    sar, optical = _inputs(1, 16, 24)
    keep = random_keep_indices(1, 6, 4, torch.Generator().manual_seed(0))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with attention_backend("sdpa"):
            reference = model(sar=sar, optical=optical)
            reference_subset = model.s2_encoder(optical, keep)
        with attention_backend("flex"):
            flex = model(sar=sar, optical=optical)
            flex_subset = model.s2_encoder(optical, keep)
    for name in reference:
        assert (flex[name] - reference[name]).abs().max().item() < 1e-5, name
    assert (flex_subset - reference_subset).abs().max().item() < 1e-5


def test_token_subset_with_every_token_equals_full_forward(model: torch.nn.Module) -> None:
    sar, optical = _inputs(2, 16, 32)
    everything = torch.arange(8).expand(2, -1)
    with torch.no_grad():
        full = model.s2_encoder(optical)
        subset = model.s2_encoder(optical, everything)
        joint_full = model.joint_encoder(model.s1_encoder(sar), full, grid=(2, 4))
        joint_subset = model.joint_encoder(model.s1_encoder(sar, everything), subset, everything,
                                           everything, grid=(2, 4))
    assert torch.equal(full, subset)
    assert torch.allclose(joint_full, joint_subset, atol=1e-6)


def test_token_subset_matches_eager_and_sees_only_kept_tokens(model: torch.nn.Module) -> None:
    _, optical = _inputs(2, 24, 32)
    keep = random_keep_indices(2, 12, 5, torch.Generator().manual_seed(3))
    changed = optical.clone()
    patches = patchify(changed, 8)
    dropped = [i for i in range(12) if i not in keep[0].tolist()]
    patches[0, dropped] = 0.5
    changed = unpatchify(patches, 8, 3, 4)
    with torch.no_grad():
        out = model.s2_encoder(optical, keep)
        with attention_backend("eager"):
            eager = model.s2_encoder(optical, keep)
        out_changed = model.s2_encoder(changed, keep)
    assert out.shape == (2, 5, 32)
    assert (out - eager).abs().max().item() < 1e-5
    assert torch.equal(out[0], out_changed[0])


def test_joint_self_bias_modes() -> None:
    torch.manual_seed(0)
    joint = build_model(ModelConfig(**TINY)).joint_encoder.eval()
    x, context = torch.randn(2, 4, 32), torch.randn(2, 4, 32)
    radar_keep = torch.tensor([[0, 1, 2, 3], [2, 5, 7, 8]])
    optical_keep = torch.tensor([[4, 5, 6, 7], [0, 1, 3, 4]])
    with torch.no_grad():
        same_radar = joint(x, context, radar_keep, radar_keep, grid=(3, 3), self_bias_mode="radar")
        same_released = joint(x, context, radar_keep, radar_keep, grid=(3, 3), self_bias_mode="released")
        radar = joint(x, context, radar_keep, optical_keep, grid=(3, 3), self_bias_mode="radar")
        released = joint(x, context, radar_keep, optical_keep, grid=(3, 3), self_bias_mode="released")
    assert torch.equal(same_radar, same_released)
    assert not torch.allclose(radar, released)
    with pytest.raises(ValueError, match="self_bias_mode"):
        joint(x, context, grid=(2, 2), self_bias_mode="other")


def test_patchify_feature_order_and_inverse() -> None:
    images = torch.arange(2 * 3 * 16 * 24, dtype=torch.float32).view(2, 3, 16, 24)
    patches = patchify(images, 8)
    assert patches.shape == (2, 6, 3 * 64)
    # token n = r * cols + c; feature = channel * 64 + i * 8 + j
    r, c, channel, i, j = 1, 2, 2, 3, 5
    assert patches[1, r * 3 + c, channel * 64 + i * 8 + j] == images[1, channel, r * 8 + i, c * 8 + j]
    assert torch.equal(unpatchify(patches, 8, 2, 3), images)


def test_random_keep_indices_are_sorted_unique_and_reproducible() -> None:
    first = random_keep_indices(3, 50, 12, torch.Generator().manual_seed(7))
    again = random_keep_indices(3, 50, 12, torch.Generator().manual_seed(7))
    assert first.shape == (3, 12) and first.dtype == torch.int64
    assert torch.equal(first, again)
    for row in first:
        assert row.unique().numel() == 12 and torch.equal(row, row.sort().values)
        assert row.min() >= 0 and row.max() < 50
    with pytest.raises(ValueError):
        random_keep_indices(1, 10, 11)


@pytest.mark.parametrize("shape", [(2, 13, 24), (1, 2, 4, 16, 16)])
def test_bad_inputs_are_clear_errors(model: torch.nn.Module, shape: tuple[int, ...]) -> None:
    with pytest.raises(UserError):
        model(sar=torch.rand(*shape))
    with pytest.raises(UserError, match="multiples of 8"):
        model(optical=torch.rand(1, 12, 20, 24))
    with pytest.raises(UserError, match="sizes differ"):
        model(sar=torch.rand(1, 2, 16, 16), optical=torch.rand(1, 12, 16, 24))


def test_normalize_numpy_and_torch_agree_and_guard_zero_std() -> None:
    rng = np.random.default_rng(0)
    raw = rng.normal(1000, 300, size=(2, 3, 5, 4)).astype(np.float32)
    mean, std = [1000.0, 900.0, 50.0], [300.0, 250.0, 0.0]
    out_np = normalize(raw, mean, std)
    out_torch = normalize(torch.from_numpy(raw), mean, std)
    assert isinstance(out_np, np.ndarray) and isinstance(out_torch, torch.Tensor)
    np.testing.assert_allclose(out_np, out_torch.numpy(), atol=1e-6)
    expected = np.clip((raw[:, 0] - (1000 - 600)) / 1200, 0, 1)
    np.testing.assert_allclose(out_np[:, 0], expected, atol=1e-6)
    assert np.isfinite(out_np).all() and out_np.min() >= 0 and out_np.max() <= 1
    assert set(np.unique(out_np[:, 2])) <= {0.0, 1.0}
    uint16 = normalize(np.full((3, 2, 2), 1000, dtype=np.uint16), mean, std)
    assert uint16.dtype == np.float32 and uint16[0, 0, 0] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        normalize(raw, mean[:2], std[:2])


@pytest.mark.gpu
def test_cuda_bf16_and_flex_attention_never_build_the_dense_bias() -> None:
    from backend.models.alibi import _CACHE, clear_alibi_cache

    torch.manual_seed(0)
    # head dim 48 as in CROMA-B (not a power of two)
    config = ModelConfig(dim=192, heads=4, sar_depth=1, optical_depth=1, joint_depth=1)
    model = build_model(config).eval().cuda()
    sar, optical = (t.cuda() for t in _inputs(1, 512, 512))  # 4096 tokens: "auto" picks FlexAttention
    clear_alibi_cache()
    with torch.no_grad():
        out = model(sar=sar, optical=optical)
        assert not _CACHE, "the dense N x N bias was built"
        with attention_backend("sdpa"):
            dense = model(sar=sar, optical=optical)
        model.cuda_autocast = False
        with attention_backend("eager"):
            exact = model(sar=sar, optical=optical)
    for name in out:
        assert out[name].dtype == torch.float32
        assert (out[name] - dense[name]).abs().max().item() < 5e-2, name
        assert (out[name] - exact[name]).abs().max().item() < 5e-2, name
