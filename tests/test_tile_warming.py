"""Tiles ready before the map asks: the warm-up encodes the zooms a map opening on the
region needs first into the cache the tile route answers from; a tile being encoded is
waited for, not encoded twice; the encoding orients rings for the whole tile at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import mapbox_vector_tile
import shapely
from sample_store import make_sample_store
from starlette.testclient import TestClient

import omw_sites.api.tiling as tiling
from omw_sites.api.server import create_app
from omw_sites.api.tiling import cached_tile, encode_tile, peek_tile, warm_tiles, warm_zooms


def test_the_first_zoom_warmed_is_the_one_that_fits_the_region() -> None:
    # 70 km across (the OMW's core) into an 800-pixel map of 512-pixel tiles: zoom 9.3
    order = warm_zooms((2_290_000.0, 6_800_000.0, 2_400_000.0, 6_906_000.0))
    assert order[:3] == [9, 10, 8]
    assert sorted(order) == list(range(25))


def test_warming_fills_the_cache_the_tile_route_answers_from(tmp_path: Path) -> None:
    store = make_sample_store(tmp_path / "omw_sites.gpkg", n=80)
    app = create_app(store)
    layer = app.state.catalog._snapshot.layers["sites"]
    assert warm_tiles(layer, max_tiles=40) > 0
    warmed = dict(layer.cache["tiles"])
    assert any(data is not None for data in warmed.values())
    client = TestClient(app)
    for (z, x, y), data in list(warmed.items())[:10]:
        assert peek_tile(layer, z, x, y) == (True, data)
        got = client.get(f"/collections/sites/tiles/WebMercatorQuad/{z}/{x}/{y}")
        assert got.status_code == (200 if data else 204)
        assert got.content == (data or b"")
        layer.cache["tiles"].pop((z, x, y))
        assert cached_tile(layer, z, x, y) == data  # encoding again gives the same bytes


def test_a_tile_being_encoded_is_waited_for_not_encoded_twice(tmp_path: Path, monkeypatch) -> None:
    store = make_sample_store(tmp_path / "omw_sites.gpkg", n=40)
    layer = create_app(store).state.catalog.snapshot.layers["sites"]
    calls = []

    def slow(*args):
        calls.append(args)
        time.sleep(0.3)
        return encode_tile(*args)

    monkeypatch.setattr(tiling, "encode_tile", slow)
    got: list[bytes | None] = []
    threads = [
        threading.Thread(target=lambda: got.append(cached_tile(layer, 9, 286, 167)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(got) == 3 and len(set(got)) == 1


def test_tile_rings_are_oriented_as_mvt_wants(tmp_path: Path) -> None:
    """Exterior rings clockwise in tile coordinates (y down), which the winding the
    encoder used to enforce per polygon gave; decoded areas are positive."""
    store = make_sample_store(tmp_path / "omw_sites.gpkg", n=200)
    layer = create_app(store).state.catalog.snapshot.layers["sites"]
    geoms, _ = layer.mercator()
    size = 2 * tiling.MERCATOR_HALF / 2**13
    keys = set()
    for point in shapely.centroid(geoms[:20]):
        keys.add(
            (
                13,
                int((point.x + tiling.MERCATOR_HALF) // size),
                int((tiling.MERCATOR_HALF - point.y) // size),
            )
        )
    found = 0
    for key in sorted(keys):
        data = encode_tile(layer, *key)
        if not data:
            continue
        decoded = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
        for feature in decoded["sites"]["features"]:
            geom = shapely.geometry.shape(feature["geometry"])
            for poly in getattr(geom, "geoms", [geom]):
                if poly.geom_type != "Polygon" or poly.area == 0:
                    continue
                # y down: clockwise on screen is counter-clockwise numerically
                assert poly.exterior.is_ccw, key
                found += 1
    assert found > 0
