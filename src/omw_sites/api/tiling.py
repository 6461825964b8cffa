"""Vector tiles: the tile matrix set they use, and the Mapbox vector tiles of a layer.

WebMercatorQuad as OGC 17-083r4 (Two Dimensional Tile Matrix Set and Tile Set Metadata
2.0) defines it, in its JSON encoding: the document of the OGC registry
(``registry/json/WebMercatorQuad.json`` of opengeospatial/2D-Tile-Matrix-Set), whose
scale denominators and cell sizes are given to 15 significant digits. It is served
locally, so that clients work offline.
"""

from __future__ import annotations

import math
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
    """The WebMercatorQuad tile matrix set (2DTMS 2.0 JSON), tile matrices 0 to 24."""
    origin = [-20037508.3427892, 20037508.3427892]
    return {
        "id": WEB_MERCATOR_QUAD,
        "title": "Google Maps Compatible for the World",
        "uri": WEB_MERCATOR_QUAD_URI,
        "crs": EPSG3857_URI,
        "orderedAxes": ["X", "Y"],
        "wellKnownScaleSet": GOOGLE_MAPS_COMPATIBLE,
        "tileMatrices": [
            {
                "id": str(z),
                "scaleDenominator": scale,
                "cellSize": cell,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": origin,
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
MAX_ZOOM = MAX_TILE_MATRIX
TILE_CACHE_SIZE = 4096  # encoded tiles kept per layer: MVT encoding is pure Python


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
    options = {"extents": TILE_EXTENT}
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
