"""One fixed-statistics stretch: inference inputs, pretraining chips and ``normalize`` agree bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window

from backend.inference.inputs import InputSet
from backend.models.config import S2_BANDS, ModalityConfig, ModelConfig
from backend.models.preprocessing import normalize
from backend.training.data.chips import normalize_chip

S2_FILE = Path("rstoolbox-sen2") / "sen2.tif"


def _previous_inference_stretch(raw: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The stretch ``ModalityInput.normalise`` computed before it called ``normalize``."""
    low = (mean - 2 * std)[:, None, None]
    scale = (4 * np.maximum(std, 1e-12))[:, None, None]
    return np.clip((raw.astype(np.float32) - low) / scale, 0, 1).astype(np.float32)


@pytest.fixture
def prepared(shared_data: Path) -> tuple[InputSet, np.ndarray]:
    """Real Sentinel-2 values in model units, read through an ``InputSet`` whose band 5 has zero std."""
    mean = [float(round(v)) for v in np.linspace(300, 3000, len(S2_BANDS))]  # whole: exact in float32
    std = [float(v) for v in np.linspace(100, 900, len(S2_BANDS))]
    std[4] = 0.0
    config = ModelConfig(dim=32, heads=4, modalities={"optical": ModalityConfig(list(S2_BANDS), mean, std)})
    inputs = InputSet(shared_data / S2_FILE, None, config)
    optical = inputs.modalities["optical"]
    raw = optical.view.read(optical.bands, window=Window(0, 0, 96, 80))
    yield inputs, optical.prepare(raw)
    inputs.close()


def test_the_three_call_sites_agree_bit_for_bit(prepared: tuple[InputSet, np.ndarray]) -> None:
    inputs, values = prepared
    optical = inputs.modalities["optical"]
    mean, std = optical.mean, optical.std
    assert std[4] == 0 and values.dtype == np.float32
    values[4, :2] = mean[4]  # exactly the mean of the zero-std band: the low end of its step
    at_inference = optical.normalise(values)
    direct = normalize(values, mean, std)
    chips = normalize_chip(values, np.ones(values.shape, bool), mean.tolist(), std.tolist())
    assert at_inference.dtype == direct.dtype == chips.dtype == np.float32
    np.testing.assert_array_equal(at_inference, direct)
    np.testing.assert_array_equal(at_inference, chips)
    # unchanged from the inference stretch before the three were one
    np.testing.assert_array_equal(at_inference, _previous_inference_stretch(values, mean, std))
    assert np.isfinite(at_inference).all() and at_inference.min() >= 0 and at_inference.max() <= 1
    assert set(np.unique(at_inference[4])) <= {0.0, 1.0} and (at_inference[4, :2] == 0).all()


def test_chips_fill_invalid_pixels_with_the_band_mean(prepared: tuple[InputSet, np.ndarray]) -> None:
    inputs, values = prepared
    optical = inputs.modalities["optical"]
    valid = np.ones(values.shape, bool)
    valid[:, :3, :3] = False
    values[:, :3, :3] = np.nan
    out = normalize_chip(values, valid, optical.mean.tolist(), optical.std.tolist())
    assert (out[:, :3, :3] == 0.5).all() and np.isfinite(out).all()
    np.testing.assert_array_equal(out[valid], normalize(values, optical.mean, optical.std)[valid])
