"""Sample polygons from GeoJSON, GeoPackage and Shapefile, in any CRS, with clear errors."""

from __future__ import annotations

import fiona
import numpy as np
import pytest
from rasterio.features import bounds as geometry_bounds

from backend.errors import UserError
from backend.io.vectors import read_sample_polygons
from tests.backend.downstream_data import SEN2_POLYGONS


def _copy(source, target, driver: str, crs: str, class_as_int: bool = False) -> None:
    from rasterio.warp import transform_geom

    with fiona.open(source) as src:
        schema = {"geometry": "Polygon", "properties": {"class": "int" if class_as_int else "str"}}
        with fiona.open(target, "w", driver=driver, crs=crs, schema=schema) as dst:
            for number, feature in enumerate(src):
                value = number % 11 if class_as_int else feature.properties["class"]
                geometry = transform_geom(src.crs, crs, feature.geometry)
                dst.write({"geometry": geometry, "properties": {"class": value}})


def test_geojson_classes_sorted_by_name(shared_data) -> None:
    samples = read_sample_polygons(shared_data / SEN2_POLYGONS, "class", "EPSG:4326")
    assert samples.classes == ["dryout", "forest", "village", "water"]
    assert len(samples.polygons) == 25
    assert samples.value_of("forest") == 2 and samples.class_values[4] == "water"


@pytest.mark.parametrize(("driver", "name"), [("GPKG", "polys.gpkg"), ("ESRI Shapefile", "polys.shp")])
def test_other_formats_and_crs_reproject_to_the_raster_crs(shared_data, tmp_path, driver, name) -> None:
    reference = read_sample_polygons(shared_data / SEN2_POLYGONS, "class", "EPSG:4326")
    _copy(shared_data / SEN2_POLYGONS, tmp_path / name, driver, "EPSG:32721")
    samples = read_sample_polygons(tmp_path / name, "class", "EPSG:4326")
    assert samples.classes == reference.classes
    for ours, theirs in zip(samples.polygons, reference.polygons):
        assert ours.class_name == theirs.class_name
        np.testing.assert_allclose(geometry_bounds(ours.geometry), geometry_bounds(theirs.geometry),
                                   atol=1e-7)


def test_integer_classes_sort_numerically(shared_data, tmp_path) -> None:
    _copy(shared_data / SEN2_POLYGONS, tmp_path / "int.gpkg", "GPKG", "EPSG:4326", class_as_int=True)
    samples = read_sample_polygons(tmp_path / "int.gpkg", "class", "EPSG:4326")
    assert samples.classes == [str(v) for v in range(11)]


def test_missing_class_field_names_the_fields(shared_data) -> None:
    with pytest.raises(UserError, match=r"no field 'landcover' \(fields: id, class\)"):
        read_sample_polygons(shared_data / SEN2_POLYGONS, "landcover", "EPSG:4326")


def test_unreadable_and_missing_files(tmp_path) -> None:
    junk = tmp_path / "junk.gpkg"
    junk.write_text("not a vector")
    with pytest.raises(UserError, match="cannot read samples"):
        read_sample_polygons(junk, "class", "EPSG:4326")
    with pytest.raises(UserError, match="not found"):
        read_sample_polygons(tmp_path / "absent.geojson", "class", "EPSG:4326")
