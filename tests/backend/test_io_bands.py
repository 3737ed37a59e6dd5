"""The one band-name canonicaliser and band matcher shared by inference, stats and pretraining."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.errors import UserError
from backend.io import rasters
from backend.io.bands import band_positions, canonical_band_name, find_bands
from backend.models.config import S2_BANDS
from backend.models.preprocessing import match_bands
from backend.training import data

# Every spelling accepted by the three former canonicalisers (io.rasters, models.preprocessing,
# training.data), with the canonical name they all now share.
SPELLINGS = {
    "B02": ["B2", "b2", "B02", "b02", "B002", " b02 ", "b 2", " B 02"],
    "B01": ["B1", "b1", "B01", "b01"],
    "B08": ["B8", "b08", " b08 "],
    "B8A": ["B8A", "b8a", "B8a", "B08A", "b08a", "B 8A"],
    "B10": ["B10", "b10"],
    "B12": ["B12", "b12"],
    "VV": ["VV", "vv", "Vv", " vv "],
    "VH": ["VH", "Vh", "vh"],
    "RED": ["red", "Red", "RED"],
    "BAND1": ["Band 1", "band1"],
    "B123": ["B123"],
}


@pytest.mark.parametrize("canonical", sorted(SPELLINGS))
def test_every_former_spelling_has_one_canonical_name(canonical: str) -> None:
    for spelling in SPELLINGS[canonical]:
        assert canonical_band_name(spelling) == canonical, spelling
        assert canonical_band_name(canonical_band_name(spelling)) == canonical  # idempotent


def test_former_entry_points_are_the_shared_function() -> None:
    assert rasters.canonical_band_name is canonical_band_name
    assert data.canonical_band is canonical_band_name


@pytest.mark.parametrize(("file_name", "band"), [
    ("B8A.tif", "B8A"), ("B1.tif", "B01"), ("VV.tif", "VV"), ("vh.tiff", "VH"),
    ("S2B_MSIL2A_20200101_B02.tif", "B02"), ("patch_12_34_B08A.tif", "B8A"), ("x_B11.TIF", "B11")])
def test_per_band_file_names_give_band_tokens(file_name: str, band: str) -> None:
    assert data._band_token(Path(file_name)) == band


def test_find_bands_matches_any_spelling_and_reports_missing() -> None:
    descriptions = ["b1", "B02", None, "", "b8a", "B08A", "vv"]
    assert band_positions(descriptions) == {"B01": 1, "B02": 2, "B8A": 5, "VV": 7}  # first duplicate wins
    assert find_bands(descriptions, ["B8A", "b2", "VV"]) == ([5, 2, 7], [])
    assert find_bands(descriptions, ["VH", "B01", "B12"]) == ([1], ["VH", "B12"])
    assert find_bands([None, None], ["B01"]) == ([], ["B01"])


def test_model_stats_matching_falls_back_to_model_order_only_for_the_same_band_count() -> None:
    described = ["b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b08a", "b9", "b10", "b11", "b12"]
    assert match_bands(described, S2_BANDS) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
    assert match_bands(["Band 1", "Band 2"], ["VV", "VH"]) == [1, 2]
    with pytest.raises(UserError, match="not all of the model's bands"):
        match_bands(["Band 1", "Band 2", "Band 3"], ["VV", "VH"])
