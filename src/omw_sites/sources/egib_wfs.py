"""EGiB parcels from the powiat's WFS (WFS 2.0 ``GetFeature``, GML).

There is no national download of parcels: every powiat runs its own service, at its own
address (KIEG, GUGiK's national integration, is a WMS). The address comes from the
settings, ``OMW_SOURCE_EGIB_WFS_URL``, with ``{powiat}`` replaced by the 4-digit code.
The feature type asked for is the EGiB application schema's parcel
(``egb:EGB_DzialkaEwidencyjna``), which ``run`` reads as EGiB GML; services that publish
only a flat ``dzialki`` layer are not covered (not confirmed which powiaty do which).
One request per powiat, no paging: an answer the service capped (``numberReturned`` <
``numberMatched``) is refused, named, rather than kept as if it were the whole area.
"""

from __future__ import annotations

from omw_sites.config import Settings
from omw_sites.sources import answers
from omw_sites.sources.spec import Area, Download, NotConfigured, wfs_bbox, with_query

NAME = "parcels"
TYPENAME = "egb:EGB_DzialkaEwidencyjna"
LICENCE = {
    "pl": "EGiB (starosta powiatu): dane z publicznej usługi WFS powiatu; warunki "
    "korzystania określa starosta",
    "en": "EGiB (the powiat's starosta): data of the powiat's public WFS; terms of use "
    "set by the starosta",
}
GIVES = {
    "pl": "działki ewidencyjne obszaru (jedyna warstwa wymagana przez `run`)",
    "en": "the area's cadastral parcels (the one layer `run` requires)",
}


def downloads(area: Area, settings: Settings) -> list[Download]:
    if not settings.source_egib_wfs_url:
        raise NotConfigured(
            "no national EGiB download exists: set OMW_SOURCE_EGIB_WFS_URL to the powiat's "
            "WFS address ({powiat} is replaced by its code), or give --parcels-by-id"
        )
    assert area.bbox is not None
    params = {
        "SERVICE": "WFS",
        "VERSION": "2.0.0",
        "REQUEST": "GetFeature",
        "TYPENAMES": TYPENAME,
        "BBOX": wfs_bbox(area.bbox),
    }
    return [
        Download(
            f"egib/{p}_dzialki_wfs.gml",
            [with_query(settings.source_egib_wfs_url.replace("{powiat}", p), params)],
            answers.wfs_collection,
        )
        for p in area.powiaty
    ]
