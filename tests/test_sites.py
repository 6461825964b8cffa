"""Site assembly: touching, gap, incompatible zoning, ownership change; real Mokotów."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from shapely import box

from omw_sites.etl.egib import ownership_class, parse_parcel_ids
from omw_sites.sites import assemble_sites, lineage, site_id


def _cand(boxes, keys, owners) -> gpd.GeoDataFrame:
    n = len(boxes)
    return gpd.GeoDataFrame(
        {
            "parcel_id": [f"146501_1.0001.{i + 1}" for i in range(n)],
            "teryt": ["1465011"] * n,
            "registered_area_ha": [b.area / 1e4 for b in boxes],
            "ownership": owners,
            "zoning_key": keys,
        },
        geometry=boxes,
        crs=2180,
    )


def test_touching_parcels_with_same_zoning_and_owner_form_one_site():
    cand = _cand(
        [box(0, 0, 100, 100), box(100, 0, 200, 100), box(200, 0, 300, 100)],
        ["mpzp:P"] * 3,
        ["municipal"] * 3,
    )
    cand["kw"] = ["WA1M/00000001/1", "", "WA1M/00000003/7"]
    sites = assemble_sites(cand, min_area_ha=0)
    assert len(sites) == 1
    s = sites.iloc[0]
    assert s["kw_numbers"] == "WA1M/00000001/1,,WA1M/00000003/7"  # aligned with parcel_ids
    assert s["n_parcels"] == 3 and s["area_ha"] == pytest.approx(3.0)
    assert s["parcel_ids"] == "146501_1.0001.1,146501_1.0001.2,146501_1.0001.3"
    assert s.geometry.area == pytest.approx(30000)
    assert s["site_id"] == site_id(s["parcel_ids"].split(","))


def test_gap_incompatible_zoning_and_ownership_change_split_sites():
    cand = _cand(
        [
            box(0, 0, 100, 100),
            box(101.5, 0, 200, 100),  # 1.5 m strip: joins (gap 2 m)
            box(210, 0, 300, 100),  # 10 m road between: separate
            box(0, 100, 100, 200),  # touches #0 but U zoning
            box(100, 100, 200, 200),  # touches #1 but private
        ],
        ["mpzp:P", "mpzp:P", "mpzp:P", "mpzp:U", "mpzp:P"],
        ["municipal", "municipal", "municipal", "municipal", "private"],
    )
    sites = assemble_sites(cand, gap_m=2.0, min_area_ha=0)
    groups = sorted(sites["parcel_ids"])
    assert groups == [
        "146501_1.0001.1,146501_1.0001.2",
        "146501_1.0001.3",
        "146501_1.0001.4",
        "146501_1.0001.5",
    ]
    assert assemble_sites(cand, gap_m=20.0, min_area_ha=0)["n_parcels"].max() == 3
    assert len(assemble_sites(cand, gap_m=2.0, min_area_ha=1.5)) == 1  # only the pair


def test_ids_are_stable_and_lineage_records_splits():
    a = _cand([box(0, 0, 100, 100), box(100, 0, 200, 100)], ["mpzp:P"] * 2, ["state"] * 2)
    before = assemble_sites(a, min_area_ha=0)
    assert before["site_id"].tolist() == assemble_sites(a, min_area_ha=0)["site_id"].tolist()
    # the second parcel changes owner: the old site splits into two
    b = a.assign(ownership=["state", "private"])
    after = assemble_sites(b, min_area_ha=0)
    derived = lineage(after, before)
    assert len(after) == 2
    assert list(derived) == [before["site_id"].iloc[0]] * 2
    assert list(lineage(before, before)) == [""]


def test_real_mokotow_municipal_parcels_assemble(fixtures_dir):
    folder = fixtures_dir / "egib_warszawa_mokotow"
    parcels = pyogrio.read_dataframe(folder / "mokotow_dzialki_epsg2180.gpkg")
    own = pd.read_csv(folder / "ownership.csv").set_index("ID_DZIALKI")["ownership"]
    parts = parse_parcel_ids(parcels["ID_DZIALKI"])
    cand = gpd.GeoDataFrame(
        {
            "parcel_id": parcels["ID_DZIALKI"],
            "teryt": parts["teryt"],
            "registered_area_ha": parcels.area / 1e4,
            "ownership": ownership_class(parcels["ID_DZIALKI"].map(own)),
            "zoning_key": "none",
        },
        geometry=parcels.geometry,
        crs=parcels.crs,
    )
    municipal = cand[cand["ownership"] == "municipal"].reset_index(drop=True)
    sites = assemble_sites(municipal, min_area_ha=0)
    assert (sites["n_parcels"] > 1).sum() > 50  # the city owns many adjacent parcels
    assert sites["n_parcels"].sum() == len(municipal)
    assert sites["area_ha"].sum() == pytest.approx(municipal.area.sum() / 1e4)
    # each multi-parcel site's dissolved area equals its parcels' sum (no overlaps)
    multi = sites[sites["n_parcels"] > 1]
    assert np.allclose(multi.area / 1e4, multi["area_ha"], rtol=1e-3)
    assert set(sites["ownership"]) == {"municipal"}
