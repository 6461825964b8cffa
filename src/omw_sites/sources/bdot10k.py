"""BDOT10k, the topographic database, as GUGiK publishes it on its open-data server: one
zip of GML files per powiat, 2021 schema,
``{base}/{voivodeship}/{powiat}_GML.zip`` (e.g. ``…/schemat2021/14/1465_GML.zip``; the
address used by several public clients of the service). The zip is kept as downloaded:
the raw folder reads it through the zip.
"""

from __future__ import annotations

from omw_sites.config import Settings
from omw_sites.sources import answers
from omw_sites.sources.spec import Area, Download

NAME = "bdot10k"
LICENCE = {
    "pl": "BDOT10k (GUGiK): dane udostępniane nieodpłatnie (art. 40a ust. 2 pkt 1 ustawy "
    "Prawo geodezyjne i kartograficzne)",
    "en": "BDOT10k (GUGiK): free of charge (Art. 40a(2)(1) of the Geodetic and Cartographic Law)",
}
GIVES = {
    "pl": "drogi z klasami, kolej, lasy, wody, linie energetyczne, Natura 2000, kompleksy "
    "komunikacyjne (stacje) — paczka każdego powiatu obszaru",
    "en": "roads with their classes, rail, forest, water, power lines, Natura 2000, "
    "transport complexes (stations) — the package of every powiat of the area",
}


def downloads(area: Area, settings: Settings) -> list[Download]:
    base = settings.source_bdot10k_url.rstrip("/")
    return [
        Download(f"bdot10k/{p}_GML.zip", [f"{base}/{p[:2]}/{p}_GML.zip"], answers.zip_package)
        for p in area.powiaty
    ]
