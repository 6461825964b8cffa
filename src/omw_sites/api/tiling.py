"""Vector tiles: the tile matrix set they use, and the Mapbox vector tiles of a layer.

WebMercatorQuad as OGC 17-083r4 (Two Dimensional Tile Matrix Set and Tile Set Metadata
2.0) defines it, in its JSON encoding: the document of the OGC registry
(``registry/json/WebMercatorQuad.json`` of opengeospatial/2D-Tile-Matrix-Set), whose
scale denominators and cell sizes are given to 15 significant digits. It is served
locally, so that clients work offline.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import numpy as np
import shapely

from omw_sites.api.served_layer import Layer

WEB_MERCATOR_QUAD = "WebMercatorQuad"
WEB_MERCATOR_QUAD_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
EPSG3857_URI = "http://www.opengis.net/def/crs/EPSG/0/3857"
GOOGLE_MAPS_COMPATIBLE = "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible"
MERCATOR_HALF = 20037508.342789244  # half the side of the WebMercatorQuad square, metres
TILE_SIZE = 256  # pixels: what the scale denominators of the definition refer to
PIXEL_SIZE = 0.00028  # metres: the standardised rendering pixel of OGC scale denominators

TMS_CONFORMANCE = [
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]
#: OGC API – Tiles Part 1 (OGC 20-057) classes the sites' vector tiles implement
TILES_CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
]

# (scaleDenominator, cellSize) of tile matrices 0..24, as the registry writes them; each is
# (2 * MERCATOR_HALF / TILE_SIZE / 2**z) metres per pixel, and that over PIXEL_SIZE
_MATRICES = (
    (559082264.028717, 156543.033928041),
    (279541132.014358, 78271.5169640204),
    (139770566.007179, 39135.7584820102),
    (69885283.0035897, 19567.8792410051),
    (34942641.5017948, 9783.93962050256),
    (17471320.7508974, 4891.96981025128),
    (8735660.37544871, 2445.98490512564),
    (4367830.18772435, 1222.99245256282),
    (2183915.09386217, 611.49622628141),
    (1091957.54693108, 305.748113140704),
    (545978.773465544, 152.874056570352),
    (272989.386732772, 76.4370282851762),
    (136494.693366386, 38.2185141425881),
    (68247.346683193, 19.109257071294),
    (34123.6733415964, 9.55462853564703),
    (17061.8366707982, 4.77731426782351),
    (8530.91833539913, 2.38865713391175),
    (4265.45916769956, 1.19432856695587),
    (2132.72958384978, 0.597164283477939),
    (1066.36479192489, 0.29858214173897),
    (533.182395962445, 0.149291070869485),
    (266.591197981222, 0.0746455354347424),
    (133.295598990611, 0.0373227677173712),
    (66.6477994953056, 0.0186613838586856),
    (33.3238997476528, 0.0093306919293428),
)
MAX_TILE_MATRIX = len(_MATRICES) - 1


def web_mercator_quad() -> dict[str, Any]:
    """The WebMercatorQuad tile matrix set (2DTMS 2.0 JSON), tile matrices 0 to 24.

    The document also carries the members of the 1.0 encoding (``identifier``,
    ``supportedCRS``, ``boundingBox`` corners, ``topLeftCorner``): GDAL 3.6, which QGIS
    3.28 LTR builds still ship, recognises a served definition only by them, and refuses
    a 2.0-only one as "Invalid tiling matrix set name". Version 2.0 readers ignore them
    (the 2.0 schema allows further members)."""
    origin = [-20037508.3427892, 20037508.3427892]
    lower, upper = [-MERCATOR_HALF, -MERCATOR_HALF], [MERCATOR_HALF, MERCATOR_HALF]
    return {
        "id": WEB_MERCATOR_QUAD,
        "identifier": WEB_MERCATOR_QUAD,
        "supportedCRS": EPSG3857_URI,
        "boundingBox": {
            "crs": EPSG3857_URI,
            "lowerLeft": lower,
            "upperRight": upper,
            "lowerCorner": lower,
            "upperCorner": upper,
        },
        "title": "Google Maps Compatible for the World",
        "uri": WEB_MERCATOR_QUAD_URI,
        "crs": EPSG3857_URI,
        "orderedAxes": ["X", "Y"],
        "wellKnownScaleSet": GOOGLE_MAPS_COMPATIBLE,
        "tileMatrices": [
            {
                "id": str(z),
                "identifier": str(z),
                "scaleDenominator": scale,
                "cellSize": cell,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": origin,
                "topLeftCorner": origin,
                "tileWidth": TILE_SIZE,
                "tileHeight": TILE_SIZE,
                "matrixWidth": 2**z,
                "matrixHeight": 2**z,
            }
            for z, (scale, cell) in enumerate(_MATRICES)
        ],
    }


TILE_MATRIX_SETS: dict[str, dict[str, Any]] = {WEB_MERCATOR_QUAD: web_mercator_quad()}


# ------------------------------------------------------------------- tile encoding

TILE_EXTENT = 4096
TILE_BUFFER = 64  # tile units of geometry kept beyond the edge, so strokes join
TILE_SIMPLIFY = 4.0  # tile units: half a pixel of a tile drawn at 512 pixels
MAX_ZOOM = MAX_TILE_MATRIX
TILE_CACHE_SIZE = 4096  # encoded tiles kept per layer: MVT encoding is pure Python
WARM_SECONDS = 60.0  # at most this much encoding ahead of the first map, per store version
# above this many sites one region-wide tile takes longer to encode than a visitor waits
# anyway: such stores are not warmed (their catalogue needs coarser tiles first)
WARM_MAX_SITES = 200_000
_tiles_lock = threading.Lock()  # the tile caches are filled from request and warm-up threads
# tiles being encoded now, by (cache, tile): the others asking for one wait for it
_in_flight: dict[tuple[int, tuple[int, int, int]], threading.Event] = {}
log = logging.getLogger(__name__)


def cached_tile(layer: Layer, z: int, x: int, y: int) -> bytes | None:
    """The encoded tile from the layer's tile cache (kept per store version, oldest
    dropped first), encoding it when missing. A tile another thread is encoding (the
    warm-up, or a second visitor) is waited for, not encoded twice."""
    tiles = _tile_cache(layer)
    key = (z, x, y)
    while True:
        with _tiles_lock:
            if key in tiles:
                return tiles[key]
            flight = _in_flight.get((id(tiles), key))
            if flight is None:
                flight = _in_flight[(id(tiles), key)] = threading.Event()
                break
        flight.wait()
    try:
        data = encode_tile(layer, z, x, y)
        with _tiles_lock:
            if len(tiles) >= TILE_CACHE_SIZE:
                tiles.pop(next(iter(tiles)), None)
            tiles[key] = data
    finally:
        with _tiles_lock:
            _in_flight.pop((id(tiles), key), None)
        flight.set()
    return data


def peek_tile(layer: Layer, z: int, x: int, y: int) -> tuple[bool, bytes | None]:
    """(found, tile) from the cache only: a cached tile is answered without a thread."""
    with _tiles_lock:
        tiles = _tile_cache(layer)
        key = (z, x, y)
        return (key in tiles, tiles.get(key))


def _tile_cache(layer: Layer) -> dict[tuple[int, int, int], bytes | None]:
    return layer.cache.setdefault("tiles", {})


def warm_zooms(bounds: tuple[float, float, float, float], map_pixels: int = 800) -> list[int]:
    """Zoom levels in the order a map opening on ``bounds`` (EPSG:3857) will ask for
    them: the level that fits the bounds into ``map_pixels`` first, then outwards."""
    width = max(bounds[2] - bounds[0], bounds[3] - bounds[1], 1.0)
    # MapLibre draws vector tiles as 512-pixel tiles: at map zoom z it asks for level z
    fit = math.log2(map_pixels * 2 * MERCATOR_HALF / (512 * width))
    return sorted(range(MAX_ZOOM + 1), key=lambda z: (abs(z - fit), z))


def warm_tiles(
    layer: Layer, *, seconds: float = WARM_SECONDS, max_tiles: int = 512, zooms: int = 5
) -> int:
    """Encode the tiles a map opening on the whole layer needs first, into its tile
    cache, so that the first visitor after a start or a reload does not wait for them.

    Works outwards from the zoom that fits the layer, ``zooms`` levels (the opening view
    and a zoom or two either way; deeper ones are encoded when asked for), and stops
    earlier after ``seconds`` of work, ``max_tiles`` tiles, or a zoom with more tiles than
    are left; a layer of more than ``WARM_MAX_SITES`` is left alone. Returns how many
    tiles it encoded (or found encoded)."""
    started = time.monotonic()
    if len(layer) == 0 or len(layer) > WARM_MAX_SITES:
        return 0
    geoms, _ = layer.mercator()
    x0, y0, x1, y1 = (float(v) for v in shapely.total_bounds(geoms))
    done = 0
    for z in warm_zooms((x0, y0, x1, y1))[:zooms]:
        size = 2 * MERCATOR_HALF / 2**z
        last = 2**z - 1
        cols = range(
            max(int((x0 + MERCATOR_HALF) // size), 0),
            min(int((x1 + MERCATOR_HALF) // size), last) + 1,
        )
        rows = range(
            max(int((MERCATOR_HALF - y1) // size), 0),
            min(int((MERCATOR_HALF - y0) // size), last) + 1,
        )
        if done + len(cols) * len(rows) > max_tiles:
            break
        for x in cols:
            for y in rows:
                if time.monotonic() - started > seconds:
                    return done
                cached_tile(layer, z, x, y)
                done += 1
    log.info("warmed %d tiles of %s in %.1f s", done, layer.name, time.monotonic() - started)
    return done


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """EPSG:3857 bounds of a WebMercatorQuad tile (y counted down from the north)."""
    size = 2 * MERCATOR_HALF / 2**z
    minx = -MERCATOR_HALF + x * size
    maxy = MERCATOR_HALF - y * size
    return (minx, maxy - size, minx + size, maxy)


def tile_attributes(layer: Layer) -> list[str]:
    """The properties a tile's features carry: the site id, scores and ranks."""
    cols = [c for c in layer.columns if c.startswith(("score_", "rank_"))]
    return (["site_id"] if "site_id" in layer.columns else []) + cols


def encode_tile(layer: Layer, z: int, x: int, y: int) -> bytes | None:
    """The MVT tile of ``layer`` (layer name = collection id), or None when empty."""
    import mapbox_vector_tile  # imported on first tile: the rest of the API does not need it

    geoms, tree = layer.mercator()
    bounds = tile_bounds(z, x, y)
    pad = (bounds[2] - bounds[0]) * TILE_BUFFER / TILE_EXTENT
    padded = (bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad)
    rows = np.sort(tree.query(shapely.box(*padded), predicate="intersects"))
    if len(rows) == 0:
        return None
    clipped = shapely.clip_by_rect(geoms[rows], *padded)
    origin = np.array(bounds[:2])
    scale = TILE_EXTENT / (bounds[2] - bounds[0])
    clipped = shapely.transform(clipped, lambda c: np.round((c - origin) * scale))  # tile units
    # vertices closer than half a pixel to the outline go (a map draws a tile at 256 to
    # 512 pixels: 8 to 16 units a pixel); a site is never dropped, only drawn with fewer
    # vertices, so the browser has half as many to read and draw at the opening zooms
    clipped = shapely.simplify(clipped, TILE_SIMPLIFY, preserve_topology=True)
    # MVT wants exterior rings clockwise (y up here; the encoder flips y): done for the
    # whole tile at once instead of the encoder's polygon-by-polygon check, the larger
    # part of its time
    clipped = shapely.orient_polygons(clipped, exterior_cw=True)
    records = layer.table.iloc[rows][tile_attributes(layer)].to_dict(orient="records")
    features = []
    for geom, rec in zip(clipped.tolist(), records, strict=True):
        if geom is None or geom.is_empty:
            continue
        props = {
            k: v
            for k, v in rec.items()
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        }
        features.append({"geometry": geom, "properties": props})
    if not features:
        return None
    options = {"extents": TILE_EXTENT, "check_winding_order": False}
    return mapbox_vector_tile.encode(
        [{"name": layer.name, "features": features}], default_options=options
    )


def tile_matrix_set_limits(bbox: tuple[float, float, float, float]) -> list[dict[str, Any]]:
    """The tiles of each tile matrix (0..MAX_ZOOM) that cover a CRS84 box (2DTMS
    ``tileMatrixSetLimits``), so clients ask only for tiles where there are data."""
    radius = MERCATOR_HALF / math.pi  # the WGS 84 semi-major axis of EPSG:3857

    def mercator(lon: float, lat: float) -> tuple[float, float]:
        lat = max(min(lat, 85.05112878), -85.05112878)
        y = radius * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
        return radius * math.radians(lon), y

    (minx, miny), (maxx, maxy) = mercator(*bbox[:2]), mercator(*bbox[2:])
    limits = []
    for z in range(MAX_ZOOM + 1):
        size, last = 2 * MERCATOR_HALF / 2**z, 2**z - 1

        def index(v: float, last: int = last, size: float = size) -> int:
            return min(max(int(v // size), 0), last)

        limits.append(
            {
                "tileMatrix": str(z),
                "minTileRow": index(MERCATOR_HALF - maxy),
                "maxTileRow": index(MERCATOR_HALF - miny),
                "minTileCol": index(minx + MERCATOR_HALF),
                "maxTileCol": index(maxx + MERCATOR_HALF),
            }
        )
    return limits
