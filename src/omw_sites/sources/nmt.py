"""NMT, the terrain model, from GUGiK's WCS (``…/PZGIK/NMT/GRID1/WCS/
DigitalTerrainModelFormatTIFF``), as GeoTIFF tiles of the area.

The request is the WCS 1.0.0 ``GetCoverage`` public clients use with this service
(``coverage=DTM_PL-KRON86-NH_TIFF``, ``bbox``, ``resx``/``resy``, ``crs=EPSG:2180``). Not
confirmed here: the largest tile the service gives, and whether an EVRF2007 coverage
replaces the KRON86 one at this address (one client reports the EVRF2007 endpoint
answering 404). The tiles are read as one mosaic by ``run``.
"""

from __future__ import annotations

import math

from omw_sites.config import Settings
from omw_sites.sources import answers
from omw_sites.sources.spec import Area, Download, with_query

NAME = "nmt"
COVERAGE = "DTM_PL-KRON86-NH_TIFF"
TILE_CELLS = 2000  # cells per side of one request (16 MB of float32)
LICENCE = {
    "pl": "NMT (GUGiK): dane udostępniane nieodpłatnie (art. 40a ust. 2 pkt 1 ustawy "
    "Prawo geodezyjne i kartograficzne)",
    "en": "NMT (GUGiK): free of charge (Art. 40a(2)(1) of the Geodetic and Cartographic Law)",
}
GIVES = {"pl": "rzeźba terenu: spadki działek", "en": "terrain: the slope of each site"}


def downloads(area: Area, settings: Settings) -> list[Download]:
    assert area.bbox is not None
    xmin, ymin, xmax, ymax = area.bbox
    res = settings.source_nmt_res_m
    tile = TILE_CELLS * res
    out = []
    for i in range(max(1, math.ceil((xmax - xmin) / tile))):
        for j in range(max(1, math.ceil((ymax - ymin) / tile))):
            x0, y0 = xmin + i * tile, ymin + j * tile
            x1, y1 = min(x0 + tile, xmax), min(y0 + tile, ymax)
            params = {
                "service": "WCS",
                "request": "GetCoverage",
                "version": "1.0.0",
                "coverage": COVERAGE,
                "format": "image/tiff",
                "bbox": f"{x0:.0f},{y0:.0f},{x1:.0f},{y1:.0f}",
                "resx": f"{res:g}",
                "resy": f"{res:g}",
                "crs": "EPSG:2180",
            }
            url = with_query(settings.source_nmt_url, params)
            out.append(Download(f"nmt/nmt_{i:02d}_{j:02d}.tif", [url], answers.elevation_grid))
    return out
