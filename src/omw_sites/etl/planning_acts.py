"""APP GML 1.0 / 2.0 (akt planowania przestrzennego): acts, plan ogólny zones, validation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from omw_sites.etl.errors import IngestError
from omw_sites.etl.gml import (
    DEFAULT_LIMITS,
    GML_NAMESPACES,
    Limits,
    first,
    geometry,
    iter_features,
    properties,
    require_namespace,
    to_work_crs,
)
from omw_sites.etl.numbers import to_number
from omw_sites.etl.result import LayerResult, concat_quarantine, quarantine_rows
from omw_sites.layers import WORK_CRS

APP_BASE = "https://www.gov.pl/static/zagospodarowanieprzestrzenne/schemas/app/"
ACT = "AktPlanowaniaPrzestrzennego"
ZONE = "StrefaPlanistyczna"
# the 2.0 area types beside the zones (read as extra layers by name)
AREAS_2_0 = (
    "ObszarZabudowySrodmiejskiej",
    "ObszarUzupelnieniaZabudowy",
    "ObszarStandardowDostepnosciInfrastrukturySpolecznej",
)

# zone symbol → code of RodzajStrefyPlanistycznejKod (the ``nazwa`` code list)
ZONE_CODES: dict[str, str] = {
    "SW": "strefaWielofunkcyjnaZZabudowaMieszkaniowaWielorodzinna",
    "SJ": "strefaWielofunkcyjnaZZabudowaMieszkaniowaJednorodzinna",
    "SZ": "strefaWielofunkcyjnaZZabudowaZagrodowa",
    "SU": "strefaUslugowa",
    "SH": "strefaHandluWielkopowierzchniowego",
    "SP": "strefaGospodarcza",
    "SR": "strefaProdukcjiRolniczej",
    "SI": "strefaInfrastrukturalna",
    "SN": "strefaZieleniIRekreacji",
    "SC": "strefaCmentarzy",
    "SG": "strefaGornictwa",
    "SO": "strefaOtwarta",
    "SK": "strefaKomunikacyjna",
}
ZONE_SYMBOLS = frozenset(ZONE_CODES)
_SYMBOL_BY_CODE = {v: k for k, v in ZONE_CODES.items()}
# zones for which the four parameters are mandatory (FORMATS.md)
PARAMETER_ZONES = frozenset({"SW", "SJ", "SZ", "SU", "SH", "SP", "SR"})
# XML element → canonical column
PARAMETERS: dict[str, str] = {
    "maksNadziemnaIntensywnoscZabudowy": "max_intensity",
    "maksUdzialPowierzchniZabudowy": "max_building_share_pct",
    "maksWysokoscZabudowy": "max_height_m",
    "minUdzialPowierzchniBiologicznieCzynnej": "min_biologically_active_pct",
}
_ONE_DECIMAL = re.compile(r"^-?\d+(?:[.,]\d)?$")
_DESIGNATION = re.compile(r"^(\d+)([A-Z]{2})$")
_TERYT = re.compile(r"/(\d{6,7})-")

# geometric tolerances: smaller overlaps / gaps are digitising noise (m²)
AREA_TOLERANCE_M2 = 1.0

RULES = {
    "symbol": "known zone symbol, consistent with the zone name (nazwa)",
    "designation": "oznaczenie is <number><symbol> of the zone",
    "parameters": "the four parameters are present for SW, SJ, SZ, SU, SH, SP, SR",
    "decimals": "parameters have at most one decimal",
    "unique oznaczenie": "oznaczenie is unique in the plan",
    "unique lokalnyId": "lokalnyId is unique in the plan",
    "no overlaps": "zones do not overlap",
    "no gaps": "zones leave no gaps within the plan's extent",
    "no self-intersections": "no self-intersecting rings",
}


def app_version(namespace: str) -> str | None:
    """``1.0`` or ``2.0`` for an APP namespace, None for anything else."""
    if not namespace.startswith(APP_BASE):
        return None
    v = namespace[len(APP_BASE) :].strip("/")
    return v if v in ("1.0", "2.0") else None


@dataclass
class AppData:
    """What one APP GML file holds: its acts and zones (EPSG:2180) and raw zone records."""

    version: str
    acts: LayerResult
    zones: LayerResult
    raw_zones: pd.DataFrame  # one row per zone as written: ids, raw parameter text, geometry


def read_app(
    path: str | Path, crs: str | int | None = None, limits: Limits = DEFAULT_LIMITS
) -> AppData:
    """Read an APP GML 1.0 or 2.0 file: ``plan_acts`` and ``plan_zones``.

    Code-list values are read from ``xlink:title`` (and the code from ``xlink:href``),
    so no GDAL ``.gfs`` template is needed.

    Raises
    ------
    IngestError
        Not APP (namespace), malformed/truncated XML, no CRS, limits exceeded.
    """
    path = Path(path)
    ns = require_namespace(path, app_version, f"an APP GML file: no {APP_BASE}1.0 or 2.0", limits)
    version = app_version(ns)
    assert version is not None  # require_namespace took ns because it has one
    acts: list[dict] = []
    zones: list[dict] = []
    act_geoms, act_srs, zone_geoms, zone_srs = [], [], [], []
    gml_id = f"{{{GML_NAMESPACES[0]}}}id"
    for el in iter_features(path, ns, (ACT, ZONE), limits):
        props = properties(el)
        common = {
            "feature_id": el.get(gml_id) or "",
            "local_id": first(props, "lokalnyId", ""),
            "namespace": first(props, "przestrzenNazw", ""),
            "version_id": first(props, "wersjaId", ""),
            "status": first(props, "status@title", ""),
            "status_code": _code(first(props, "status@href", "")),
            "in_force_from": first(props, "obowiazujeOd", ""),
            "in_force_to": first(props, "obowiazujeDo", ""),
        }
        if el.tag.endswith(ACT):
            g, s = geometry(next((c for c in el if c.tag == f"{{{ns}}}zasiegPrzestrzenny"), None))
            act_geoms.append(g)
            act_srs.append(s)
            acts.append(
                common
                | {
                    "title": first(props, "tytul", ""),
                    "plan_type": first(props, "typPlanu@title", ""),
                    "plan_type_code": _code(first(props, "typPlanu@href", "")),
                    "level": first(props, "poziomHierarchii@title", ""),
                    "version_start": first(props, "poczatekWersjiObiektu", ""),
                }
            )
            continue
        g, s = geometry(next((c for c in el if c.tag == f"{{{ns}}}geometria"), None))
        zone_geoms.append(g)
        zone_srs.append(s)
        zones.append(
            common
                | {
                "designation": first(props, "oznaczenie", ""),
                "symbol_raw": first(props, "symbol", ""),
                "name": first(props, "nazwa@title", ""),
                "name_code": _code(first(props, "nazwa@href", "")),
                "legal_nature": first(props, "charakterUstalenia@title", ""),
                "profiles": _profiles(props, "profilPodstawowy"),
                "profile_names": "; ".join(props.get("profilPodstawowy@title", [])),
                "additional_profiles": _profiles(props, "profilDodatkowy"),
                }
            | {f"raw_{k}": first(props, k) for k in PARAMETERS}
        )  # fmt: skip
    if not acts and not zones:
        msg = f"no {ACT} or {ZONE} features"
        raise IngestError(path, msg, rule="APP features present")
    act_frame = _frame(path, ACT, acts, act_geoms, act_srs, crs)
    zone_frame = _frame(path, ZONE, zones, zone_geoms, zone_srs, crs)
    raw = pd.DataFrame(zone_frame.drop(columns="geometry"))
    raw["geometry"] = zone_frame.geometry.to_numpy()
    fmt = f"app-gml-{version}"
    return AppData(
        version,
        _acts_result(path, act_frame, fmt, act_srs, crs),
        _zones_result(path, zone_frame, fmt),
        raw,
    )


def _profiles(props: dict[str, list[str]], name: str) -> str:
    """KPT profile codes of a zone (``…KPT#KPT-MPZP-MN`` → ``MN``), comma-separated."""
    return ",".join(_code(h).rsplit("-", 1)[-1] for h in props.get(f"{name}@href", []))


def _code(href: str) -> str:
    return href.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1] if href else ""


def _frame(path, layer, rows, geoms, srs, crs) -> gpd.GeoDataFrame:
    if not rows:
        return gpd.GeoDataFrame({"feature_id": []}, geometry=[], crs=WORK_CRS)
    arr, crs_in = to_work_crs(path, layer, geoms, srs, crs)
    out = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=list(arr), crs=WORK_CRS)
    out.attrs["crs_in"] = crs_in
    return out


def _teryt(namespaces: pd.Series) -> np.ndarray:
    return namespaces.astype(str).str.extract(_TERYT)[0].fillna("").to_numpy()


def _acts_result(path, frame, fmt, srs, crs) -> LayerResult:
    if len(frame):
        frame["teryt"] = _teryt(frame["namespace"])
        frame["area_km2"] = frame.geometry.area / 1e6
    return LayerResult(
        "plan_acts",
        frame,
        concat_quarantine([]),
        fmt,
        ACT,
        frame.attrs.get("crs_in", ""),
        len(frame),
    )


def _zones_result(path: Path, frame: gpd.GeoDataFrame, fmt: str) -> LayerResult:
    if not len(frame):
        return LayerResult("plan_zones", frame, concat_quarantine([]), fmt, ZONE, "", 0)
    frame["symbol"] = frame["symbol_raw"].astype(str).str.strip().str.upper()
    frame["teryt"] = _teryt(frame["namespace"])
    for tag, col in PARAMETERS.items():
        frame[col] = to_number(frame[f"raw_{tag}"])
    frame["area_ha"] = frame.geometry.area / 1e4
    unknown = ~frame["symbol"].isin(ZONE_SYMBOLS).to_numpy()
    q = quarantine_rows(  # kept in the layer, and reported
        path,
        ZONE,
        frame["feature_id"][unknown],
        RULES["symbol"],
        "kept with its raw symbol: " + frame["symbol_raw"][unknown].astype(str),
    )
    frame = frame.drop(columns=[f"raw_{k}" for k in PARAMETERS])
    return LayerResult("plan_zones", frame, q, fmt, ZONE, frame.attrs.get("crs_in", ""), len(frame))


# ----------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Defect:
    """One broken rule of an APP file."""

    feature_id: str
    rule: str
    detail: str


def validate_app(
    path: str | Path,
    plan: str | Path | None = None,
    crs: str | int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Defect]:
    """Check the zones of an APP file against the plan ogólny rules.

    Rules (``RULES``): known zone symbol consistent with its name, designation
    ``<number><symbol>``, the four parameters present for SW/SJ/SZ/SU/SH/SP/SR with at
    most one decimal, unique ``oznaczenie`` and ``lokalnyId``, no overlapping zones, no
    gaps within the plan's extent, no self-intersecting rings.

    The plan's extent comes from the act in the same file, else from ``plan`` (an APP
    file with the act), else from an act in a sibling ``pog/`` folder; without any act,
    holes inside the union of the zones count as gaps.

    Returns
    -------
    list of Defect, empty for a clean file.
    """
    path = Path(path)
    data = read_app(path, crs, limits)
    z = data.raw_zones
    defects: list[Defect] = []
    if not len(z):
        return defects
    ids = z["feature_id"].where(z["feature_id"] != "", z["local_id"]).astype(str).to_numpy()
    symbol = z["symbol_raw"].astype(str).str.strip().str.upper()
    design = z["designation"].astype(str).str.strip().str.extract(_DESIGNATION)
    for i in range(len(z)):
        sym, fid = symbol.iloc[i], ids[i]
        expected = _SYMBOL_BY_CODE.get(z["name_code"].iloc[i])
        d_sym = design[1].iloc[i]
        if sym not in ZONE_SYMBOLS:
            defects.append(Defect(fid, "symbol", f"unknown zone symbol {sym!r}"))
        elif expected and expected != sym:
            detail = f"symbol {sym} but the zone name is {z['name_code'].iloc[i]} ({expected})"
            defects.append(Defect(fid, "symbol", detail))
        elif isinstance(d_sym, str) and d_sym in ZONE_SYMBOLS and d_sym != sym:
            detail = f"symbol {sym} but oznaczenie {z['designation'].iloc[i]!r} says {d_sym}"
            defects.append(Defect(fid, "symbol", detail))
        if not isinstance(d_sym, str) or d_sym not in ZONE_SYMBOLS:
            detail = f"oznaczenie {z['designation'].iloc[i]!r} is not <number><zone symbol>"
            defects.append(Defect(fid, "designation", detail))
        for tag in PARAMETERS:
            raw = z[f"raw_{tag}"].iloc[i]
            if raw is None or (isinstance(raw, float) and np.isnan(raw)):
                if sym in PARAMETER_ZONES:
                    defects.append(Defect(fid, "parameters", f"{tag} is missing"))
            elif not _ONE_DECIMAL.match(str(raw).strip()):
                detail = f"{tag} = {raw} has more than one decimal (or is not a number)"
                defects.append(Defect(fid, "decimals", detail))
    for col, rule in (("designation", "unique oznaczenie"), ("local_id", "unique lokalnyId")):
        dup = z[col].astype(str).duplicated(keep=False) & (z[col].astype(str) != "")
        for fid, value in zip(ids[dup.to_numpy()], z[col][dup], strict=True):
            defects.append(Defect(fid, rule, f"{col} {value!r} is used by more than one zone"))
    geoms = np.asarray(z["geometry"].to_numpy())
    reasons = shapely.is_valid_reason(geoms)
    for fid, why in zip(ids, reasons, strict=True):
        if why and "Self-intersection" in why:
            defects.append(Defect(fid, "no self-intersections", why))
    fixed = np.where(shapely.is_valid(geoms), geoms, shapely.make_valid(geoms))
    fixed = np.array([_polygonal(g) for g in fixed], dtype=object)
    defects += _overlaps(fixed, ids)
    defects += _gaps(path, data, fixed, ids, plan, crs, limits)
    return defects


def _polygonal(g: shapely.Geometry) -> shapely.Geometry:
    if g is None or g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _overlaps(geoms: np.ndarray, ids: np.ndarray) -> list[Defect]:
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    if not len(left):
        return []
    area = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    out = []
    for a, b, m2 in zip(left, right, area, strict=True):
        if m2 > AREA_TOLERANCE_M2:
            detail = f"overlaps zone {ids[b]} by {m2:,.1f} m²"
            out.append(Defect(ids[a], "no overlaps", detail))
    return out


def _gaps(path, data, geoms, ids, plan, crs, limits) -> list[Defect]:
    extent = _plan_extent(path, data, plan, crs, limits)
    union = shapely.union_all(geoms)
    if extent is None:  # no act: holes inside the union of the zones
        polys = shapely.get_parts(union)
        holes = [shapely.Polygon(r) for p in polys for r in p.interiors]
        gap = shapely.union_all(holes) if holes else shapely.Polygon()
    else:
        gap = shapely.difference(extent, union)
    out = []
    for part in shapely.get_parts(gap):
        if part.area <= AREA_TOLERANCE_M2 or part.geom_type != "Polygon":
            continue
        near = shapely.STRtree(geoms).query(part.buffer(0.01), predicate="intersects")
        who = ", ".join(ids[near]) or "plan extent"
        c = part.representative_point()
        detail = (
            f"gap of {part.area:,.1f} m² at E {c.x:.1f} N {c.y:.1f} (EPSG:2180) "
            f"not covered by any zone"
        )
        out.append(Defect(who, "no gaps", detail))
    return out


def _plan_extent(path, data, plan, crs, limits) -> shapely.Geometry | None:
    acts = data.acts.frame
    if not len(acts) and plan is not None:
        acts = read_app(plan, crs, limits).acts.frame
    if not len(acts):
        for candidate in sorted((path.parent.parent / "pog").glob("*.gml")):
            try:
                acts = read_app(candidate, crs, limits).acts.frame
            except IngestError:
                continue
            if len(acts):
                break
    if not len(acts):
        return None
    same = acts[acts["namespace"].isin(set(data.raw_zones["namespace"]))]
    return shapely.union_all((same if len(same) else acts).geometry.to_numpy())
