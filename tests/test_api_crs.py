"""OGC API Features Part 2: output, bbox and filter CRS (CRS84, EPSG:4326, 4258, 2180 and
the PL-2000 zones 2176-2179).

A site whose first corner is the Palace of Culture and Science in Warsaw is written to the
store; every CRS must give its coordinates in the CRS's own (EPSG) axis order, within 1 cm
of what pyproj computes in authority order, and bboxes in each CRS must select as
geopandas does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import pyogrio
import pyproj
import pytest
import shapely
from sample_store import make_sample_store
from test_api import CRS84, EPSG2180, assert_problem, iter_coords, strict_json

from omw_sites.layers import WORK_CRS

EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG2178 = "http://www.opengis.net/def/crs/EPSG/0/2178"
EPSG4258 = "http://www.opengis.net/def/crs/EPSG/0/4258"  # ETRS89, (latitude, longitude)
PL2000 = {z: f"http://www.opengis.net/def/crs/EPSG/0/{2171 + z}" for z in (5, 6, 7, 8)}
ALL_CRS = [CRS84, EPSG4326, EPSG4258, EPSG2180, *PL2000.values()]
CODES = {CRS84: "OGC:CRS84", EPSG4326: "EPSG:4326", EPSG2180: "EPSG:2180"} | {
    uri: "EPSG:" + uri.rsplit("/", 1)[1] for uri in (EPSG4258, *PL2000.values())
}
LAT_LON = (EPSG4326, EPSG4258)
NORTHING_EASTING = (EPSG2180, *PL2000.values())
PALACE_LATLON = (52.231667, 21.006389)  # Palace of Culture and Science, WGS 84
PALACE_ID = "SPALACE0001"
ITEMS = "/collections/sites/items"
N_SITES = 600


def palace_in(crs: str) -> tuple[float, float]:
    """The Palace in ``crs``'s authority axis order, computed by pyproj from (lat, lon)."""
    t = pyproj.Transformer.from_crs("EPSG:4326", CODES[crs])  # authority order in and out
    a, b = t.transform(*PALACE_LATLON)
    return float(a), float(b)


def metres_apart(crs: str, got: np.ndarray, want: tuple[float, float]) -> np.ndarray:
    """Distance in EPSG:2180 metres between points given in ``crs``'s authority order."""
    t = pyproj.Transformer.from_crs(CODES[crs], "EPSG:2180")  # authority order: (N, E) out
    gn, ge = t.transform(got[:, 0], got[:, 1])
    wn, we = t.transform(*want)
    return np.hypot(np.asarray(gn) - wn, np.asarray(ge) - we)


def append_site(store: Path, site_id: str, geometry: shapely.Geometry | None = None, **values):
    """Append a copy of the store's first site with a new id (and geometry, values).

    Written with GDAL straight into the GeoPackage's site layer, so the copy keeps every
    column the store writes, whatever its version.
    """
    first = pyogrio.read_dataframe(store, layer="sites", max_features=1)
    first.loc[0, "site_id"] = site_id
    for column, value in values.items():
        first.loc[0, column] = value
    if geometry is not None:
        if first.geom_type.iloc[0] == "MultiPolygon" and geometry.geom_type == "Polygon":
            geometry = shapely.MultiPolygon([geometry])  # the layer's own geometry type
        first = first.set_geometry(gpd.GeoSeries([geometry], crs=first.crs))
    pyogrio.write_dataframe(first, store, layer="sites", append=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample store and one more site: a 40 m square cornered at the Palace."""
    path = make_sample_store(tmp_path_factory.mktemp("api_crs") / "omw.gpkg", n=N_SITES, seed=5)
    n, e = palace_in(EPSG2180)
    square = shapely.Polygon([(e, n), (e + 40, n), (e + 40, n + 40), (e, n + 40)])
    append_site(path, PALACE_ID, square)
    return path


def test_collections_advertise_every_crs(client: httpx.Client) -> None:
    doc = strict_json(client.get("/collections"))
    assert len(doc["collections"]) > 1
    for collection in doc["collections"]:
        assert collection["crs"][0] == CRS84  # the default first
        assert sorted(collection["crs"]) == sorted(ALL_CRS)
        assert collection["storageCrs"] == EPSG2180
    single = strict_json(client.get("/collections/sites"))
    assert sorted(single["crs"]) == sorted(ALL_CRS)


@pytest.mark.parametrize("crs", ALL_CRS)
def test_palace_round_trip_in_each_crs(client: httpx.Client, crs: str) -> None:
    want = palace_in(crs)
    for path in (f"{ITEMS}/{PALACE_ID}", ITEMS):
        params = {"crs": crs} if path != ITEMS else {"crs": crs, "site_id": PALACE_ID}
        r = client.get(path, params=params)
        assert r.status_code == 200, r.text
        assert r.headers["content-crs"] == f"<{crs}>"
        doc = strict_json(r)
        feature = doc if path != ITEMS else doc["features"][0]
        assert feature["id"] == PALACE_ID
        ring = np.array(list(iter_coords(feature["geometry"])), dtype=float)
        assert ring.shape == (5, 2)
        # the Palace corner, within 1 cm, in the CRS's authority axis order
        assert metres_apart(crs, ring, want).min() < 0.01


@pytest.mark.parametrize(
    ("crs", "first", "second"),
    [
        (CRS84, (20.9, 21.1), (52.1, 52.4)),  # longitude, latitude
        (EPSG4326, (52.1, 52.4), (20.9, 21.1)),  # latitude, longitude
        (EPSG4258, (52.1, 52.4), (20.9, 21.1)),  # latitude, longitude (ETRS89)
        (EPSG2180, (480_000, 495_000), (630_000, 645_000)),  # northing, easting
        # PL-2000 zones: northing, easting; the easting's millions are the zone number
        (PL2000[5], (5_800_000, 5_810_000), (5_905_000, 5_915_000)),
        (PL2000[6], (5_788_000, 5_798_000), (6_700_000, 6_710_000)),
        (PL2000[7], (5_780_000, 5_795_000), (7_495_000, 7_505_000)),  # Warsaw's own zone
        (PL2000[8], (5_788_000, 5_798_000), (8_290_000, 8_300_000)),
    ],
)
def test_axis_order_of_each_crs(
    client: httpx.Client, crs: str, first: tuple[float, float], second: tuple[float, float]
) -> None:
    doc = strict_json(client.get(f"{ITEMS}/{PALACE_ID}", params={"crs": crs}))
    for a, b in iter_coords(doc["geometry"]):
        assert first[0] < a < first[1] and second[0] < b < second[1], (a, b)


def crs84_box_in(crs: str, box: tuple[float, float, float, float]) -> tuple[float, ...]:
    """The envelope, in ``crs``'s bbox axis order, of a lon/lat box (densified edges)."""
    minx, miny, maxx, maxy = box
    if crs == CRS84:
        return box
    if crs in LAT_LON:
        return (miny, minx, maxy, maxx)
    t = pyproj.Transformer.from_crs("OGC:CRS84", CODES[crs], always_xy=True)
    x0, y0, x1, y1 = t.transform_bounds(minx, miny, maxx, maxy, densify_pts=50)
    return (y0, x0, y1, x1)  # projected PL CRS: minN,minE,maxN,maxE


@pytest.mark.parametrize("crs", ALL_CRS)
def test_bbox_crs_selects_like_geopandas(
    client: httpx.Client, sites: gpd.GeoDataFrame, crs: str
) -> None:
    box84 = (20.95, 52.15, 21.10, 52.28)
    base = strict_json(
        client.get(ITEMS, params={"bbox": ",".join(map(str, box84)), "limit": 10000})
    )
    base_ids = {f["id"] for f in base["features"]}
    assert PALACE_ID in base_ids and 0 < len(base_ids) < len(sites)

    box = crs84_box_in(crs, box84)
    params = {"bbox": ",".join(map(str, box)), "bbox-crs": crs, "limit": 10000}
    got = strict_json(client.get(ITEMS, params=params))
    ids = {f["id"] for f in got["features"]}
    assert got["numberMatched"] == len(ids)

    projected = sites.to_crs(CODES[crs])
    if crs in NORTHING_EASTING:  # (N, E) box → (E, N) geometry
        region = shapely.box(box[1], box[0], box[3], box[2])
    elif crs in LAT_LON:  # geopandas keeps x = longitude
        region = shapely.box(box[1], box[0], box[3], box[2])
    else:
        region = shapely.box(*box)
    truth = set(projected.loc[projected.intersects(region), "site_id"])
    assert ids == truth
    if crs in LAT_LON:
        assert ids == base_ids  # the very same box, axes swapped
    else:
        assert ids >= base_ids  # the projected envelope contains the lon/lat box


def test_bbox_in_epsg4326_with_lon_first_finds_nothing(client: httpx.Client) -> None:
    # lon,lat order given for EPSG:4326 reads as latitude ~21°, longitude ~52°: not Warsaw
    params = {"bbox": "20.95,52.15,21.10,52.28", "bbox-crs": EPSG4326}
    assert strict_json(client.get(ITEMS, params=params))["numberMatched"] == 0


@pytest.mark.parametrize("crs", ALL_CRS)
def test_filter_crs_point_literal(client: httpx.Client, crs: str) -> None:
    # 10 m inside the square from its Palace corner, in the CRS's axis order
    n, e = palace_in(EPSG2180)
    inside_84 = pyproj.Transformer.from_crs("EPSG:2180", "OGC:CRS84").transform(n + 10, e + 10)
    t = pyproj.Transformer.from_crs("OGC:CRS84", CODES[crs])
    a, b = t.transform(*inside_84)
    params = {"filter": f"S_INTERSECTS(geometry, POINT({a:.8f} {b:.8f}))", "filter-crs": crs}
    doc = strict_json(client.get(ITEMS, params=params))
    assert [f["id"] for f in doc["features"]] == [PALACE_ID]


@pytest.mark.parametrize("param", ["crs", "bbox-crs", "filter-crs"])
def test_unsupported_crs_is_400(client: httpx.Client, param: str) -> None:
    params = {param: "http://www.opengis.net/def/crs/EPSG/0/3857"}
    if param == "bbox-crs":
        params["bbox"] = "0,0,1,1"
    if param == "filter-crs":
        params["filter"] = "area_ha > 1"
    body = assert_problem(client.get(ITEMS, params=params), 400, "unsupported CRS", EPSG2178)
    assert body["invalid-params"][0]["name"] == param
    r = client.get(f"{ITEMS}/{PALACE_ID}", params={"crs": "EPSG:4326"})  # not a URI
    assert_problem(r, 400, "unsupported CRS")


def test_bad_bbox_in_4326_is_400(client: httpx.Client) -> None:
    r = client.get(ITEMS, params={"bbox": "91,20,92,21", "bbox-crs": EPSG4326})
    assert_problem(r, 400, "minlat,minlon,maxlat,maxlon")


GDAL_CLIENT = textwrap.dedent(
    """
    import json, sys
    import pyogrio
    pyogrio.set_gdal_config_options({"GDAL_HTTP_TIMEOUT": "60", "GDAL_HTTP_MAX_RETRY": "0"})
    url, crs = sys.argv[1], sys.argv[2]
    df = pyogrio.read_dataframe(f"OAPIF:{url}/", layer="sites", CRS=crs)
    print(json.dumps({"crs": df.crs.to_string(), "ids": df["site_id"].tolist(),
                      "wkt": df.geometry.to_wkt().tolist()}))
    """
)


def test_gdal_oapif_reads_in_pl2000_zone7(base_url: str, sites: gpd.GeoDataFrame) -> None:
    """GDAL asks for EPSG:2178 (its CRS open option) and reads northing/easting right."""
    crs = "EPSG:2178"
    proc = subprocess.run(
        [sys.executable, "-c", GDAL_CLIENT, base_url, crs],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout)
    assert got["crs"] == crs
    assert sorted(got["ids"]) == sorted(sites["site_id"]) and len(got["ids"]) == N_SITES + 1
    # GDAL hands geometries out in GIS (x, y) order; compare in metres after projecting back
    geoms = gpd.GeoSeries.from_wkt(got["wkt"], crs=crs)
    xy = geoms.set_crs(pyproj.CRS(crs), allow_override=True)
    back = xy.to_crs(WORK_CRS)
    truth = sites.set_index("site_id").geometry.loc[got["ids"]]
    assert np.allclose(back.bounds.to_numpy(), truth.bounds.to_numpy(), atol=0.02)
