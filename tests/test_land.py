"""Land: farmland by soil class, forest land, existing buildings.

A hand-made site (100 × 100 m) with known contours, then the real EGiB 2021 export
(``cgeo_2021/dane-EGiB.gml``: land-use and soil-class contours, buildings) read in place.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely import box

from omw_sites.criteria.measure import measure
from omw_sites.etl.egib_land import holds_land, read_egib_land
from omw_sites.etl.ingest import QUARANTINE_COLUMNS, RawData, load_raw
from omw_sites.layers import WORK_CRS

X0, Y0 = 640_000.0, 480_000.0
LAND = ("agri_share", "forest_land_share", "soil_i_iii_share", "soil_iv_vi_share")
BUILT = ("built_up_share", "brownfield")


def _gdf(columns: dict, geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=geoms, crs=WORK_CRS)


def _strip(x0: float, x1: float):
    return box(X0 + x0, Y0, X0 + x1, Y0 + 100)


# A (x 0–100): arable land over its western 40 m, built-up land (B) over the next 30 m,
# forest (Ls) over the eastern 30 m. Soil: IIIa on the western 20 m, IVb on the next
# 20 m (both arable, R), V under the forest (Ls: forest land, not farmland).
LAND_USE = _gdf({"ofu": ["R", "B", "Ls"]}, [_strip(0, 40), _strip(40, 70), _strip(70, 100)])
SOIL = _gdf(
    {"ozu": ["R", "R", "Ls"], "ozk": ["IIIA", "IVB", "V"]},
    [_strip(0, 20), _strip(20, 40), _strip(70, 100)],
)
# a 10 × 10 m house inside A; B (x 200–300) only has the neighbour's eave over its
# western edge: 1 × 10 m
BUILDINGS = _gdf(
    {}, [box(X0 + 45, Y0 + 45, X0 + 55, Y0 + 55), box(X0 + 190, Y0, X0 + 201, Y0 + 10)]
)
SITES = gpd.GeoDataFrame(
    {"site_id": ["A", "B"], "teryt": ["1465011"] * 2, "area_ha": [1.0, 1.0]},
    geometry=[_strip(0, 100), _strip(200, 300)],
    crs=WORK_CRS,
)


def _raw(layers: dict) -> RawData:
    return RawData(dict(layers), None, {}, pd.DataFrame(columns=QUARANTINE_COLUMNS))


def test_shares_of_farmland_soil_classes_forest_and_buildings():
    layers = {"land_use": LAND_USE, "soil_classes": SOIL, "buildings": BUILDINGS}
    out, cov = measure(SITES, _raw(layers))
    a, b = out.iloc[0], out.iloc[1]
    assert (a["agri_share"], a["forest_land_share"]) == (0.4, 0.3)
    assert (a["soil_i_iii_share"], a["soil_iv_vi_share"]) == (0.2, 0.2)
    assert (a["built_up_share"], bool(a["brownfield"])) == (0.01, True)
    # B: no contours; 10 m² of a neighbour's eave is no building on the site
    assert b[list(LAND)].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert (b["built_up_share"], bool(b["brownfield"])) == (0.001, False)
    assert not set(LAND + BUILT) & set(cov.not_measured)


@pytest.mark.parametrize(
    ("key", "cols"),
    [
        ("land_use", ("agri_share", "forest_land_share")),
        ("soil_classes", ("soil_i_iii_share", "soil_iv_vi_share")),
        ("buildings", BUILT),
    ],
)
def test_a_missing_layer_leaves_only_its_columns_unmeasured(key, cols):
    layers = {"land_use": LAND_USE, "soil_classes": SOIL, "buildings": BUILDINGS}
    del layers[key]
    out, cov = measure(SITES, _raw(layers))
    for col in cols:
        assert out[col].isna().all(), col
        assert col in cov.not_measured, col
    others = [c for c in LAND + BUILT if c not in cols]
    assert out[others].notna().all(axis=None)


def test_contours_and_buildings_of_a_real_egib_2021_export(fixtures_dir):
    """dane-EGiB.gml: 14 current land-use contours (R, Br, Bi, Lzr, dr), 7 soil-class
    contours (all arable, R, of classes IVa, IVb and V) and 49 current buildings of 51
    (two are earlier versions). A site drawn as one of them measures it alone."""
    path = fixtures_dir / "cgeo_2021" / "dane-EGiB.gml"
    assert holds_land(path)
    land = read_egib_land(path)
    assert {k: len(v) for k, v in land.items()} == {
        "land_use": 14,
        "soil_classes": 7,
        "buildings": 49,
    }
    assert set(land["land_use"]["ofu"]) == {"R", "Br", "Bi", "Lzr", "dr"}
    assert set(land["soil_classes"]["ozk"]) == {"IVA", "IVB", "V"}
    lu, soil, bld = land["land_use"], land["soil_classes"], land["buildings"]
    arable = lu[lu["ofu"] == "R"].geometry.iloc[0]
    road = lu[lu["ofu"] == "dr"].geometry.iloc[0]
    sites = gpd.GeoDataFrame(
        {"site_id": ["R", "dr", "soil", "house"], "teryt": ["0613045"] * 4},
        geometry=[arable, road, soil.geometry.iloc[0], bld.geometry.iloc[0]],
        crs=WORK_CRS,
    )
    sites["area_ha"] = sites.area / 1e4
    out, _ = measure(sites, _raw(land))
    assert out["agri_share"].tolist()[:2] == [1.0, 0.0]
    assert out["soil_i_iii_share"].iloc[2] == 0.0 and out["soil_iv_vi_share"].iloc[2] == 1.0
    assert out["built_up_share"].iloc[3] == 1.0 and bool(out["brownfield"].iloc[3])


def test_ingest_takes_the_contours_from_the_egib_gml_it_reads(fixtures_dir, tmp_path):
    """A raw folder holding only the EGiB export (linked, not copied): its parcels, and
    its contours and buildings as layers of their own."""
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    (raw_dir / "dane-EGiB.gml").symlink_to(fixtures_dir / "cgeo_2021" / "dane-EGiB.gml")
    raw = load_raw(raw_dir)
    assert len(raw["parcels"]) == 29
    assert (len(raw["land_use"]), len(raw["soil_classes"]), len(raw["buildings"])) == (14, 7, 49)
    assert "land_use" not in raw.absent and "buildings" not in raw.absent
    files = {f["file"]: f for f in raw.files}
    keys = {layer["key"] for layer in files["dane-EGiB.gml"]["layers"]}
    assert {"parcels", "land_use", "soil_classes", "buildings"} <= keys
    # the parcels under those buildings are brownfield
    sites = raw["parcels"].assign(site_id=raw["parcels"]["parcel_id"])
    out, _ = measure(sites, raw)
    assert out["brownfield"].sum() >= 1 and np.nanmax(out["agri_share"]) > 0.5
