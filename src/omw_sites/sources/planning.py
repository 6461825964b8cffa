"""Planning acts as APP datasets (MPZP extents and status, plan ogólny zones), GML as
each gmina publishes them.

Every gmina publishes its APP set at its own address (listed in the national register
of APP sets); no one national download was confirmed. The address comes from the
settings, ``OMW_SOURCE_APP_URL``, with ``{teryt}`` replaced by the gmina's 7 digits;
without it the source is skipped, named.
"""

from __future__ import annotations

from omw_sites.config import Settings
from omw_sites.sources import answers
from omw_sites.sources.spec import Area, Download, NotConfigured

NAME = "app"
LICENCE = {
    "pl": "APP (gmina): zbiór danych przestrzennych aktów planowania przestrzennego, "
    "publikowany przez gminę",
    "en": "APP (the gmina): the spatial dataset of planning acts the gmina publishes",
}
GIVES = {
    "pl": "plan ogólny (strefy planistyczne) i zasięgi MPZP z ich statusem",
    "en": "the plan ogólny (planning zones) and MPZP extents with their status",
}


def downloads(area: Area, settings: Settings) -> list[Download]:
    if not settings.source_app_url:
        raise NotConfigured(
            "each gmina publishes its APP set at its own address: set OMW_SOURCE_APP_URL "
            "({teryt} is replaced by the gmina's code)"
        )
    return [
        Download(
            f"app/{t}_app.gml",
            [settings.source_app_url.replace("{teryt}", t)],
            answers.wfs_collection,
        )
        for t in area.gminy
    ]
