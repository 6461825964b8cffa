"""The tile matrix set the vector tiles use, served locally so clients work offline.

WebMercatorQuad as OGC 17-083r4 (Two Dimensional Tile Matrix Set and Tile Set Metadata
2.0) defines it, in its JSON encoding: the document of the OGC registry
(``registry/json/WebMercatorQuad.json`` of opengeospatial/2D-Tile-Matrix-Set), whose
scale denominators and cell sizes are given to 15 significant digits.
"""

from __future__ import annotations

from typing import Any

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
