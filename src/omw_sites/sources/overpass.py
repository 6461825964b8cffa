"""OpenStreetMap through an Overpass API (``overpass-api.de/api/interpreter``): roads,
rail, stations, motorway junctions and airports of the area, as OSM XML (``out:xml``),
the ``.osm`` format ``run`` reads. Used by ``run`` only for what BDOT10k lacks
(motorway junctions, stations, airports)."""

from __future__ import annotations

from urllib.parse import urlencode

from pyproj import Transformer

from omw_sites.config import Settings
from omw_sites.sources import answers
from omw_sites.sources.spec import Area, Download

NAME = "osm"
LICENCE = {
    "pl": "© współtwórcy OpenStreetMap, licencja ODbL 1.0 (openstreetmap.org/copyright)",
    "en": "© OpenStreetMap contributors, ODbL 1.0 (openstreetmap.org/copyright)",
}
GIVES = {
    "pl": "węzły autostradowe, stacje kolejowe, lotniska, drogi i kolej (uzupełnia BDOT10k)",
    "en": "motorway junctions, rail stations, airports, roads and rail (fills BDOT10k gaps)",
}
QUERY = """[out:xml][timeout:300];
(
  way["highway"~"^(motorway|trunk|primary|secondary|tertiary|unclassified|residential|service)(_link)?$"]({b});
  way["railway"="rail"]({b});
  node["railway"~"^(station|halt)$"]({b});
  node["highway"="motorway_junction"]({b});
  way["aeroway"="aerodrome"]({b});
);
(._;>;);
out body;
"""


def query(area: Area) -> str:
    """The Overpass QL query for the area (Overpass takes south, west, north, east)."""
    assert area.bbox is not None
    xmin, ymin, xmax, ymax = area.bbox
    to_wgs = Transformer.from_crs(2180, 4326, always_xy=True)
    lons, lats = to_wgs.transform([xmin, xmax, xmin, xmax], [ymin, ymin, ymax, ymax])
    b = f"{min(lats):.5f},{min(lons):.5f},{max(lats):.5f},{max(lons):.5f}"
    return QUERY.format(b=b)


def downloads(area: Area, settings: Settings) -> list[Download]:
    body = urlencode({"data": query(area)}).encode()
    return [
        Download("osm/overpass.osm", [settings.source_overpass_url], answers.osm_xml, data=body)
    ]
