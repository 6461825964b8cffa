"""Write demo parcels as an EGiB 2021 GML export (Dz.U. 2021 poz. 1390), as a powiat sends it."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import geopandas as gpd
import numpy as np
import shapely

EGIB_2021_NS = "ewidencjaGruntowIBudynkow:1.0"
GML_NS = "http://www.opengis.net/gml/3.2"
XLINK_NS = "http://www.w3.org/1999/xlink"
NAMESPACE = "PL.PZGiK.1418.EGiB"  # przestrzeń nazw of the powiat's register


def _pos_list(ring: np.ndarray) -> str:
    """Northing-easting pairs, as EPSG:2176–2180 URNs require (FORMATS.md)."""
    return " ".join(f"{y:.2f} {x:.2f}" for x, y in ring)


def _polygon(geom: shapely.Polygon, srs: str, gid: str) -> str:
    rings = [
        f"<gml:exterior><gml:LinearRing><gml:posList>"
        f"{_pos_list(np.asarray(geom.exterior.coords))}"
        f"</gml:posList></gml:LinearRing></gml:exterior>"
    ]
    rings += [
        f"<gml:interior><gml:LinearRing><gml:posList>{_pos_list(np.asarray(r.coords))}"
        f"</gml:posList></gml:LinearRing></gml:interior>"
        for r in geom.interiors
    ]
    return f'<gml:Polygon gml:id="{gid}" srsName="{srs}">{"".join(rings)}</gml:Polygon>'


def write_egib_2021(parcels: gpd.GeoDataFrame, path: Path, version_date: str) -> int:
    """Write ``parcels`` (EGiB columns, a PL-2000 or PL-1992 CRS) as an EGiB 2021 GML file.

    Each parcel is an ``egb:EGB_DzialkaEwidencyjna`` with ``idDzialki``, ``geometria``,
    ``poleEwidencyjne`` (ha), ``numerKW`` and a ``JRG2`` link to its registration unit;
    one ``egb:EGB_JednostkaRejestrowaGruntow`` per ownership group carries
    ``grupaRejestrowa``. Coordinates are written northing first. Returns the count.
    """
    epsg = parcels.crs.to_epsg()
    srs = f"urn:ogc:def:crs:EPSG::{epsg}"
    groups = parcels["GRUPA_REJESTROWA"].astype(int).to_numpy()
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<gml:FeatureCollection gml:id="omw-demo" xmlns:gml="{GML_NS}" '
        f'xmlns:xlink="{XLINK_NS}" xmlns:egb="{EGIB_2021_NS}">\n',
    ]
    for g in np.unique(groups):
        parts.append(
            f'<gml:featureMember><egb:EGB_JednostkaRejestrowaGruntow gml:id="JRG_{g}">'
            f"<egb:idIIP><egb:EGB_IdentyfikatorIIP><egb:lokalnyId>JRG_{g}</egb:lokalnyId>"
            f"<egb:przestrzenNazw>{NAMESPACE}</egb:przestrzenNazw>"
            f"</egb:EGB_IdentyfikatorIIP></egb:idIIP>"
            f"<egb:grupaRejestrowa>{g}</egb:grupaRejestrowa>"
            f"</egb:EGB_JednostkaRejestrowaGruntow></gml:featureMember>\n"
        )
    geoms = parcels.geometry.to_numpy()
    ids = parcels["ID_DZIALKI"].astype(str).to_numpy()
    area = parcels["POLE_EWIDENCYJNE"].to_numpy(dtype=float)
    kw = parcels["KW"].fillna("").astype(str).to_numpy()
    for i, (pid, geom) in enumerate(zip(ids, geoms, strict=True)):
        polys = shapely.get_parts(geom)
        poly = polys[np.argmax(shapely.area(polys))]  # demo parcels are single polygons
        local = f"demo-{i:08d}"
        kw_el = f"<egb:numerKW>{escape(kw[i])}</egb:numerKW>" if kw[i] else ""
        parts.append(
            f'<gml:featureMember><egb:EGB_DzialkaEwidencyjna gml:id="{NAMESPACE}_{local}">'
            f"<egb:idIIP><egb:EGB_IdentyfikatorIIP><egb:lokalnyId>{local}</egb:lokalnyId>"
            f"<egb:przestrzenNazw>{NAMESPACE}</egb:przestrzenNazw>"
            f"<egb:wersjaId>{version_date}T00:00:00</egb:wersjaId>"
            f"</egb:EGB_IdentyfikatorIIP></egb:idIIP>"
            f"<egb:startObiekt>{version_date}T00:00:00</egb:startObiekt>"
            f"<egb:startWersjaObiekt>{version_date}T00:00:00</egb:startWersjaObiekt>"
            f"<egb:idDzialki>{escape(pid)}</egb:idDzialki>"
            f"<egb:geometria>{_polygon(poly, srs, f'g{i}')}</egb:geometria>"
            f'<egb:poleEwidencyjne uom="ha">{area[i]:.4f}</egb:poleEwidencyjne>'
            f"{kw_el}"
            f'<egb:JRG2 xlink:href="#JRG_{groups[i]}"/>'
            f"</egb:EGB_DzialkaEwidencyjna></gml:featureMember>\n"
        )
    parts.append("</gml:FeatureCollection>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts), encoding="utf-8")
    return len(ids)
