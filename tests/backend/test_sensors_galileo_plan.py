"""``sensors --optical`` plans a Galileo model as ``embed`` runs it: channel groups, never spectral fill."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.io.simulate import write_landsat_from_s2
from tests.backend.conftest import events_of, run_json

S2_FILE = "sen1floods11/Spain_7370579_S2Hand.tif"


@pytest.fixture(scope="module")
def landsat_l1(shared_data, tmp_path_factory) -> Path:
    """A 4-band Landsat 8 Level-1 stack named B2..B5 (no metadata), simulated from the Sen1Floods11 chip."""
    return write_landsat_from_s2(shared_data / S2_FILE, tmp_path_factory.mktemp("l1") / "l1.tif",
                                 units="landsat-l1", bands=("B2", "B3", "B4", "B5"), metadata=False)


def _plan(raster: Path, model: str) -> dict:
    done = run_json("sensors", "--optical", raster, "--model", model)
    assert done.returncode == 0, done.stderr[-2000:]
    events = events_of(done)
    facts = events[-1]["stats"]
    facts["warning_lines"] = [e["message"] for e in events if e["event"] == "warning"]
    return facts


def test_galileo_plan_names_groups_and_fills_nothing(landsat_l1) -> None:
    facts = _plan(landsat_l1, "galileo-nano")
    assert facts["sensor"] == "landsat-oli" and facts["filled"] == []
    assert facts["groups_used"] == ["S2_RGB", "S2_NIR_10m", "S2_NIR_20m", "NDVI"]
    assert "S2_Red_Edge" in facts["groups_masked"] and "S2_SWIR" in facts["groups_masked"]
    assert "B8A<-B5" in facts["plan"]
    assert not any("spectral fill" in line for line in facts["warning_lines"])
    # a CROMA model reads the same stack through spectral fill, and says so
    croma = _plan(landsat_l1, "terraprobe-croma-small")
    assert {"B05", "B11", "B12"} <= set(croma["filled"])
    assert any("spectral fill" in line and "--model galileo-nano" in line for line in croma["warning_lines"])
