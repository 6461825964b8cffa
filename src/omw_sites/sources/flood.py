"""Flood hazard zones (ISOK maps of Wody Polskie, Q1% = once in 100 years), from a WFS.

The public viewing service of the flood hazard maps is a WMS; the address of a WFS
giving the zones as features was not confirmed, so it comes from the settings
(``OMW_SOURCE_FLOOD_URL``: a GetFeature URL naming its type, to which the area's BBOX is
added); without it the source is skipped, named. The file name carries ``ISOK`` and
``Q1``, by which ``run`` tells flood zones (their columns do not say so).
"""

from __future__ import annotations

from omw_sites.config import Settings
from omw_sites.sources import answers
from omw_sites.sources.spec import Area, Download, NotConfigured, wfs_bbox, with_query

NAME = "flood"
LICENCE = {
    "pl": "Mapy zagrożenia powodziowego (Wody Polskie, ISOK): informacja publiczna",
    "en": "Flood hazard maps (Wody Polskie, ISOK): public information",
}
GIVES = {
    "pl": "obszary szczególnego zagrożenia powodzią (Q1%)",
    "en": "special flood hazard areas (Q1%)",
}


def downloads(area: Area, settings: Settings) -> list[Download]:
    if not settings.source_flood_url:
        raise NotConfigured(
            "no confirmed WFS of the flood hazard zones: set OMW_SOURCE_FLOOD_URL to a "
            "GetFeature URL (the area's BBOX is added)"
        )
    assert area.bbox is not None
    url = with_query(settings.source_flood_url, {"BBOX": wfs_bbox(area.bbox)})
    return [
        Download("hydro/ISOK_obszary_zagrozenia_powodziowego_Q1.gml", [url], answers.wfs_collection)
    ]
