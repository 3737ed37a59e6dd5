"""Weight files: official five-key layout, TorchGeo flat form, our safetensors + JSON, safety."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from backend.errors import UserError
from backend.models import (
    S1_BANDS,
    S2_BANDS,
    CromaModel,
    ModelConfig,
    base_config,
    build_model,
    large_config,
    load_encoder,
    official_state_dicts,
    save_model,
)
from backend.models.weights import infer_config, load_state_strict, parameter_count
from tests.backend.conftest import run_backend
from tests.conftest import SHARED_DATA

SMALL = dict(dim=64, heads=16, sar_depth=1, optical_depth=2, joint_depth=1)


def spec_key_shapes(d: int, sar_layers: int, optical_layers: int, joint_layers: int) -> dict[str, tuple]:
    """The checkpoint key -> shape table written out from the spec (section 1.10)."""
    table: dict[str, tuple] = {}

    def vit(top: str, channels: int, layers: int) -> None:
        table[f"{top}.linear_input.weight"] = (d, 64 * channels)
        table[f"{top}.linear_input.bias"] = (d,)
        for layer in range(layers):
            p = f"{top}.transformer.layers.{layer}"
            table[f"{p}.0.to_qkv.weight"] = (3 * d, d)
            table[f"{p}.0.to_out.weight"], table[f"{p}.0.to_out.bias"] = (d, d), (d,)
            table[f"{p}.0.input_norm.weight"] = table[f"{p}.0.input_norm.bias"] = (d,)
            table[f"{p}.1.net.0.weight"], table[f"{p}.1.net.0.bias"] = (4 * d, d), (4 * d,)
            table[f"{p}.1.net.3.weight"], table[f"{p}.1.net.3.bias"] = (d, 4 * d), (d,)
            table[f"{p}.1.input_norm.weight"] = table[f"{p}.1.input_norm.bias"] = (d,)
        table[f"{top}.transformer.norm_out.weight"] = table[f"{top}.transformer.norm_out.bias"] = (d,)

    def gap(top: str) -> None:
        table[f"{top}.0.weight"] = table[f"{top}.0.bias"] = (d,)
        table[f"{top}.1.weight"], table[f"{top}.1.bias"] = (4 * d, d), (4 * d,)
        table[f"{top}.3.weight"], table[f"{top}.3.bias"] = (d, 4 * d), (d,)

    vit("s1_encoder", 2, sar_layers)
    gap("s1_GAP_FFN")
    vit("s2_encoder", 12, optical_layers)
    gap("s2_GAP_FFN")
    for layer in range(joint_layers):
        p = f"joint_encoder.layers.{layer}"
        table[f"{p}.0.to_qkv.weight"] = (3 * d, d)
        table[f"{p}.0.to_out.weight"], table[f"{p}.0.to_out.bias"] = (d, d), (d,)
        table[f"{p}.0.input_norm.weight"] = table[f"{p}.0.input_norm.bias"] = (d,)
        for name in ("to_q", "to_k", "to_v"):
            table[f"{p}.1.{name}.weight"] = (d, d)
        table[f"{p}.1.to_out.weight"], table[f"{p}.1.to_out.bias"] = (d, d), (d,)
        table[f"{p}.1.input_norm.weight"] = table[f"{p}.1.input_norm.bias"] = (d,)
        table[f"{p}.2.net.0.weight"], table[f"{p}.2.net.0.bias"] = (4 * d, d), (4 * d,)
        table[f"{p}.2.net.3.weight"], table[f"{p}.2.net.3.bias"] = (d, 4 * d), (d,)
        table[f"{p}.2.input_norm.weight"] = table[f"{p}.2.input_norm.bias"] = (d,)
    table["joint_encoder.norm_out.weight"] = table["joint_encoder.norm_out.bias"] = (d,)
    return table


def meta_model(config: ModelConfig) -> CromaModel:
    with torch.device("meta"):
        return CromaModel(config)


@pytest.mark.parametrize(("config", "keys", "parameters", "spec"), [
    (base_config(), 328, 194_365_440, (768, 6, 12, 6)),
    (large_config(), 634, 672_557_056, (1024, 12, 24, 12)),
])
def test_released_sizes_have_the_spec_keys_shapes_and_parameter_counts(
        config: ModelConfig, keys: int, parameters: int, spec: tuple[int, ...]) -> None:
    model = meta_model(config)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == spec_key_shapes(*spec)
    assert len(shapes) == keys
    assert parameter_count(config) == parameters
    nested = official_state_dicts(model)
    assert list(nested) == ["s1_encoder", "s1_GAP_FFN", "s2_encoder", "s2_GAP_FFN", "joint_encoder"]
    per_top = [70, 6, 136, 6, 110] if keys == 328 else [136, 6, 268, 6, 218]
    assert [len(v) for v in nested.values()] == per_top


def test_large_checkpoint_shapes_load_strictly_without_memory() -> None:
    flat = {k: torch.empty(shape, device="meta") for k, shape in spec_key_shapes(1024, 12, 24, 12).items()}
    config = infer_config(flat)
    assert config.name == "croma-large" and config.dim == 1024 and config.optical_depth == 24
    assert config.modalities["optical"].bands == list(S2_BANDS)
    load_state_strict(meta_model(config), flat, "large.pt")
    del flat["joint_encoder.layers.11.1.to_v.weight"]
    with pytest.raises(UserError, match=r"1 missing \(joint_encoder.layers.11.1.to_v.weight\)"):
        load_state_strict(meta_model(config), flat, "large.pt")


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CromaModel]:
    torch.manual_seed(0)
    model = build_model(base_config()).eval()
    path = tmp_path_factory.mktemp("official") / "CROMA_base.pt"
    torch.save(official_state_dicts(model), path)
    return path, model


def test_official_base_checkpoint_loads_strictly_and_reproduces_outputs(
        base_checkpoint: tuple[Path, CromaModel]) -> None:
    path, source = base_checkpoint
    loaded = load_encoder(path)
    assert not loaded.training
    assert loaded.config.name == "croma-base"
    assert loaded.config.modalities["sar"].bands == list(S1_BANDS)
    assert loaded.config.modalities["optical"].mean is None
    generator = torch.Generator().manual_seed(0)
    sar = torch.rand(1, 2, 32, 32, generator=generator)
    optical = torch.rand(1, 12, 32, 32, generator=generator)
    with torch.no_grad():
        expected, got = source(sar=sar, optical=optical), loaded(sar=sar, optical=optical)
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def test_torchgeo_flat_checkpoints_load(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = build_model(ModelConfig(**SMALL)).eval()
    flat = model.state_dict()
    optical_only = {k: v for k, v in flat.items() if k.startswith("s2_")}
    wrapped = {"state_dict": {f"model.{k}": v for k, v in flat.items()}}
    for name, payload in (("flat.pt", flat), ("wrapped.ckpt", wrapped), ("optical.pt", optical_only)):
        torch.save(payload, tmp_path / name)
    image = torch.rand(1, 12, 16, 16)
    with torch.no_grad():
        expected = model(optical=image)["optical_pooled"]
        for name in ("flat.pt", "wrapped.ckpt", "optical.pt"):
            loaded = load_encoder(tmp_path / name)
            assert loaded.config.name == "croma-custom" and loaded.config.optical_depth == 2
            assert torch.equal(loaded(optical=image)["optical_pooled"], expected), name
    assert set(load_encoder(tmp_path / "optical.pt").config.modalities) == {"optical"}


def test_wrong_missing_or_unexpected_keys_fail_clearly(tmp_path: Path) -> None:
    nested = official_state_dicts(build_model(ModelConfig(**SMALL)))
    nested["s2_encoder"].pop("transformer.layers.1.0.to_qkv.weight")
    nested["s1_GAP_FFN"]["4.weight"] = torch.zeros(3)
    nested["joint_encoder"]["norm_out.bias"] = torch.zeros(65)
    torch.save(nested, tmp_path / "broken.pt")
    with pytest.raises(UserError) as error:
        load_encoder(tmp_path / "broken.pt")
    message = str(error.value)
    assert "1 missing (s2_encoder.transformer.layers.1.0.to_qkv.weight)" in message
    assert "1 unexpected (s1_GAP_FFN.4.weight)" in message
    assert "joint_encoder.norm_out.bias [65] != [64]" in message
    torch.save({"something": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a CROMA checkpoint"):
        load_encoder(tmp_path / "other.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="is not a PyTorch checkpoint"):
        load_encoder(tmp_path / "garbage.pt")
    with pytest.raises(UserError, match="not found"):
        load_encoder(tmp_path / "absent.pt")


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_carries_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    payload = {"s2_encoder": {"linear_input.weight": torch.zeros(2, 2)}, "evil": _RunsCode(marker)}
    torch.save(payload, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="refused to load"):
        load_encoder(tmp_path / "evil.pt")
    assert not marker.exists()


def test_save_and_load_round_trip_is_exact(tmp_path: Path) -> None:
    torch.manual_seed(2)
    config = ModelConfig(**SMALL, name="tiny")
    config.modalities["optical"].mean = [float(v) for v in range(12)]
    config.modalities["optical"].std = [1.0] * 12
    model = build_model(config).eval()
    weights, config_path = save_model(model, tmp_path / "tiny.safetensors")
    assert (weights.name, config_path.name) == ("tiny.safetensors", "tiny.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json", "tiny.safetensors"]
    data = json.loads(config_path.read_text())
    assert data["modalities"]["optical"]["bands"] == list(S2_BANDS)
    assert data["modalities"]["optical"]["mean"][3] == 3.0 and data["dim"] == 64
    sar, optical = torch.rand(1, 2, 16, 24), torch.rand(1, 12, 16, 24)
    with torch.no_grad():
        expected = model(sar=sar, optical=optical)
        for path in (weights, config_path, tmp_path / "tiny"):
            got = load_encoder(path)(sar=sar, optical=optical)
            assert all(torch.equal(expected[k], got[k]) for k in expected)
    config_path.unlink()
    with pytest.raises(UserError, match="model config not found"):
        load_encoder(weights)


def test_import_weights_and_info_commands(tmp_path: Path) -> None:
    torch.manual_seed(3)
    torch.save(official_state_dicts(build_model(ModelConfig(**SMALL))), tmp_path / "official.pt")
    s2 = SHARED_DATA / "sen1floods11" / "Spain_7370579_S2Hand.tif"
    args = ["import-weights", str(tmp_path / "official.pt"), "--out", str(tmp_path / "model"),
            "--events", "json"]
    if s2.exists():
        args += ["--optical-stats-from", str(s2)]
    proc = run_backend(*args)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["outputs"]["weights"].endswith("model.safetensors")
    proc = run_backend("info", str(tmp_path / "model.json"), "--events", "json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.splitlines()[-1])["stats"]
    assert (info["dim"], info["heads"], info["optical_depth"]) == (64, 16, 2)
    assert info["parameters"] == sum(p.numel() for p in build_model(ModelConfig(**SMALL)).parameters())
    assert info["modalities"]["optical"]["bands"] == list(S2_BANDS)
    if s2.exists():
        mean = info["modalities"]["optical"]["mean"]
        assert len(mean) == 12 and 100 < mean[3] < 5000  # B04 in L1C reflectance x 10000
    proc = run_backend("info", str(tmp_path / "missing.json"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: model file not found")
