"""Demo data written as official GML exports: EGiB 2021, APP 2.0 plan ogólny, GESUT 2021."""

from __future__ import annotations

import hashlib
from pathlib import Path
from xml.sax.saxutils import escape

import geopandas as gpd
import numpy as np
import pandas as pd
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


APP_2_NS = "https://www.gov.pl/static/zagospodarowanieprzestrzenne/schemas/app/2.0"
WFS_NS = "http://www.opengis.net/wfs/2.0"
KPT = "https://www.gov.pl/static/zagospodarowanieprzestrzenne/ontology/KPT#KPT-MPZP-"
ZONE_CODES = (
    "https://www.gov.pl/static/zagospodarowanieprzestrzenne/codelist/RodzajStrefyPlanistycznejKod/"
)
STATUS = "http://inspire.ec.europa.eu/codelist/ProcessStepGeneralValue/legalForce"
PARAMETERS = (
    ("maksNadziemnaIntensywnoscZabudowy", ""),
    ("maksUdzialPowierzchniZabudowy", ""),
    ("maksWysokoscZabudowy", ' uom="m"'),
    ("minUdzialPowierzchniBiologicznieCzynnej", ""),
)


def _surface(geom: shapely.Geometry, srs: str, gid: str) -> str:
    polys = shapely.get_parts(geom)
    if len(polys) == 1:
        return _polygon(polys[0], srs, gid)
    members = "".join(
        f"<gml:surfaceMember>{_polygon(p, srs, f'{gid}-{k}')}</gml:surfaceMember>"
        for k, p in enumerate(polys)
    )
    return f'<gml:MultiSurface gml:id="{gid}" srsName="{srs}">{members}</gml:MultiSurface>'


def write_app_2_0(zones: gpd.GeoDataFrame, path: Path, teryt: str, version: str) -> int:
    """Write plan ogólny zones as an APP 2.0 ``wfs:FeatureCollection`` of StrefaPlanistyczna.

    ``zones`` carries the demo's GPKG columns (``lokalnyId``, ``oznaczenie``, ``symbol``,
    ``nazwa``, ``profilPodstawowy``, the four parameters, ``obowiazujeOd``) in a PL-2000
    or PL-1992 CRS; code-list values are written as ``xlink:href`` + ``xlink:title`` as
    the ministry's schema has them. Returns the number of zones written.
    """
    epsg = zones.crs.to_epsg()
    srs = f"http://www.opengis.net/def/crs/EPSG/0/{epsg}"
    space = f"PL.ZIPPZP.{teryt[:4]}/{teryt}-POG"
    stamp = version.replace("-", "") + "T000000"
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<wfs:FeatureCollection xmlns:wfs="{WFS_NS}" xmlns:app="{APP_2_NS}" '
        f'xmlns:gml="{GML_NS}" xmlns:xlink="{XLINK_NS}" numberMatched="unknown" '
        f'numberReturned="{len(zones)}" timeStamp="{version}T00:00:00Z">\n',
    ]
    for i, row in enumerate(zones.itertuples(index=False)):
        local = escape(str(row.lokalnyId))
        gid = f"{space.replace('/', '_')}_{local}_{stamp}"
        profiles = "".join(
            f'<app:profilPodstawowy xlink:href="{KPT}{p.strip()}" xlink:title="{p.strip()}"/>'
            for p in str(row.profilPodstawowy).split(",")
            if p.strip()
        )
        params = "".join(
            f"<app:{tag}{attr}>{getattr(row, tag):.1f}</app:{tag}>"
            for tag, attr in PARAMETERS
            if getattr(row, tag) == getattr(row, tag)  # not NaN
        )
        out.append(
            f'<wfs:member><app:StrefaPlanistyczna gml:id="{gid}">'
            f"<app:idIIP><app:Identyfikator><app:przestrzenNazw>{space}</app:przestrzenNazw>"
            f"<app:lokalnyId>{local}</app:lokalnyId><app:wersjaId>{stamp}</app:wersjaId>"
            f"</app:Identyfikator></app:idIIP>"
            f"<app:oznaczenie>{escape(str(row.oznaczenie))}</app:oznaczenie>"
            f"<app:symbol>{escape(str(row.symbol))}</app:symbol>"
            f"<app:obowiazujeOd>{escape(str(row.obowiazujeOd))}</app:obowiazujeOd>"
            f'<app:status xlink:href="{STATUS}" xlink:title="prawnie wiążący"/>'
            f"<app:geometria>{_surface(row.geometry, srs, f'z{i}')}</app:geometria>"
            f'<app:nazwa xlink:href="{ZONE_CODES}{escape(str(row.symbol))}" '
            f'xlink:title="{escape(str(row.nazwa))}"/>'
            f"{profiles}{params}"
            f"</app:StrefaPlanistyczna></wfs:member>\n"
        )
    out.append("</wfs:FeatureCollection>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(out), encoding="utf-8")
    return len(zones)


GESUT_NS = "geodezyjnaEwidencjaSieciUzbrojeniaTerenu:1.0"
# line feature type per network code (rodzajSieci), as in the 2021 GESUT schema
GESUT_LINE_TYPES = {
    "w": "GES_PrzewodWodociagowy",
    "k": "GES_PrzewodKanalizacyjny",
    "e": "GES_PrzewodElektroenergetyczny",
    "g": "GES_PrzewodGazowy",
    "c": "GES_PrzewodCieplowniczy",
    "t": "GES_PrzewodTelekomunikacyjny",
}
_WITH_DIAMETER = ("w", "k", "g", "c")


def _lokalny_id(powiat: str, i: int) -> str:
    """Stable UUID-shaped ``lokalnyId`` (the schema's 8-4-4-4-12 pattern)."""
    h = hashlib.sha1(f"omw-demo/gesut/{powiat}/{i}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def write_gesut_2021(lines: gpd.GeoDataFrame, path: Path, powiat: str, version_date: str) -> int:
    """Write utility lines as a powiat's GESUT 2021 GML export (Dz.U. 2021 poz. 1390).

    ``lines`` carries the demo's GESUT columns (``RODZAJSIECI``, ``STATUS``, ``TYP``,
    ``SREDNICA``, ``WLADAJACY``, ``EKSPLOATACJA``) in a PL-2000 or PL-1992 CRS. Each
    line is a ``ges:GES_Przewod<Network>`` with the schema's element order: ``idIIP``
    (``przestrzenNazw`` ``PL.PZGiK.<powiat>.GESUT``), ``startObiekt``,
    ``startWersjaObiekt``, ``zrodlo``, ``status``, ``eksploatacja``, ``wladajacy``,
    ``geometria`` (``gml:Curve`` / ``LineStringSegment``, northing first), ``funkcja``,
    ``przebieg``, ``typPrzewodu`` (power: voltage class), ``srednica`` (mm) and, for
    telecom, ``wiazka``. The network is told by the feature type, as in real exports
    (which carry no ``rodzajSieci`` on lines). Returns the number of lines written.
    """
    epsg = lines.crs.to_epsg()
    srs = f"urn:ogc:def:crs:EPSG::{epsg}"
    space = f"PL.PZGiK.{powiat}.GESUT"
    stamp = f"{version_date}T00:00:00"
    nets = lines["RODZAJSIECI"].astype(str).to_numpy()
    unknown = sorted(set(nets) - set(GESUT_LINE_TYPES))
    if unknown:
        msg = f"no GESUT line type for network code(s) {unknown}"
        raise ValueError(msg)
    status = lines["STATUS"].astype(str).to_numpy()
    use = lines["EKSPLOATACJA"].fillna("c").astype(str).to_numpy()
    kind = lines["TYP"].to_numpy(dtype=object)
    diameter = lines["SREDNICA"].to_numpy(dtype=object)
    owner = lines["WLADAJACY"].fillna("").astype(str).to_numpy()
    geoms = lines.geometry.to_numpy()
    if not shapely.get_type_id(geoms).tolist() == [1] * len(geoms):
        msg = "GESUT lines must be single LineStrings (gml:Curve)"
        raise ValueError(msg)
    coords = shapely.get_coordinates(geoms)
    ends = np.cumsum(shapely.get_num_coordinates(geoms))
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<gml:FeatureCollection gml:id="omw-demo-gesut" xmlns:gml="{GML_NS}" '
        f'xmlns:xlink="{XLINK_NS}" xmlns:ges="{GESUT_NS}">\n',
    ]
    start = 0
    for i in range(len(geoms)):
        net, local = nets[i], _lokalny_id(powiat, i)
        tag = f"ges:{GESUT_LINE_TYPES[net]}"
        pos = _pos_list(coords[start : ends[i]])
        start = ends[i]
        typ = f"<ges:typPrzewodu>{kind[i]}</ges:typPrzewodu>" if net == "e" and kind[i] else ""
        d = diameter[i]
        dia = (
            f"<ges:srednica>{int(d)}</ges:srednica>"
            if net in _WITH_DIAMETER and d is not None and d is not pd.NA
            else ""
        )
        bundle = "<ges:wiazka>false</ges:wiazka>" if net == "t" else ""
        owner_el = f"<ges:wladajacy>{escape(owner[i])}</ges:wladajacy>" if owner[i] else ""
        out.append(
            f'<gml:featureMember><{tag} gml:id="{space}_{local}_{version_date}T00-00-00">'
            f"<ges:idIIP><ges:GES_IdentyfikatorIIP><ges:lokalnyId>{local}</ges:lokalnyId>"
            f"<ges:przestrzenNazw>{space}</ges:przestrzenNazw>"
            f"<ges:wersjaId>{stamp}</ges:wersjaId>"
            f"</ges:GES_IdentyfikatorIIP></ges:idIIP>"
            f"<ges:startObiekt>{stamp}</ges:startObiekt>"
            f"<ges:startWersjaObiekt>{stamp}</ges:startWersjaObiekt>"
            f"<ges:zrodlo>O</ges:zrodlo>"
            f"<ges:status>{status[i]}</ges:status>"
            f"<ges:eksploatacja>{use[i]}</ges:eksploatacja>"
            f"{owner_el}"
            f'<ges:geometria><gml:Curve gml:id="c{i}" srsName="{srs}"><gml:segments>'
            f'<gml:LineStringSegment><gml:posList srsDimension="2">{pos}</gml:posList>'
            f"</gml:LineStringSegment></gml:segments></gml:Curve></ges:geometria>"
            f"<ges:funkcja>p</ges:funkcja><ges:przebieg>p</ges:przebieg>"
            f"{typ}{dia}{bundle}"
            f"</{tag}></gml:featureMember>\n"
        )
    out.append("</gml:FeatureCollection>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(out), encoding="utf-8")
    return len(geoms)
