"""Natura 2000 areas from GDOŚ's WFS (``sdi.gdos.gov.pl/wfs``, GeoServer, workspace
``GDOS``): special protection areas for birds (``ObszarySpecjalnejOchrony``, OSO) and
special areas of conservation (``SpecjalneObszaryOchrony``, SOO), WFS 2.0 GML.

``run`` takes Natura 2000 from BDOT10k (``OT_TCON_A``); these files are the register's
own boundaries, kept in the folder with their provenance (the raw folder does not yet
tell them by content: they are listed as not used).
"""

from __future__ import annotations

from omw_sites.config import Settings
from omw_sites.sources import answers
from omw_sites.sources.spec import Area, Download, wfs_bbox, with_query

NAME = "natura2000"
TYPES = ("GDOS:ObszarySpecjalnejOchrony", "GDOS:SpecjalneObszaryOchrony")
LICENCE = {
    "pl": "GDOŚ, centralny rejestr form ochrony przyrody: dane publiczne; nie stanowią "
    "prawnego ustalenia granic form ochrony przyrody",
    "en": "GDOŚ, central register of nature protection forms: public data; not a legal "
    "determination of the boundaries",
}
GIVES = {
    "pl": "obszary Natura 2000 (OSO i SOO) z rejestru GDOŚ",
    "en": "Natura 2000 areas (SPA and SAC) from the GDOŚ register",
}


def downloads(area: Area, settings: Settings) -> list[Download]:
    assert area.bbox is not None
    out = []
    for typename in TYPES:
        params = {
            "SERVICE": "WFS",
            "VERSION": "2.0.0",
            "REQUEST": "GetFeature",
            "TYPENAMES": typename,
            "BBOX": wfs_bbox(area.bbox),
        }
        url = with_query(settings.source_natura2000_url, params)
        name = typename.split(":")[1]
        out.append(Download(f"natura2000/GDOS_{name}.gml", [url], answers.wfs_collection))
    return out
