"""Transport points that real downloads do not publish as a layer, derived from those
that they do: motorway and expressway junctions from the road topology, rail stations
and airports from BDOT10k's transport complexes and stops.

GDDKiA's junction list, PKP's station list and an airport layer are not part of any
official per-powiat package; BDOT10k is. Each function returns the canonical reference
layer (``REFERENCE_COLUMNS``) in EPSG:2180, empty when there is nothing to derive.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from omw_sites.layers import REFERENCE_COLUMNS, WORK_CRS

MOTORWAY_CLASSES = ("A", "S")  # motorways and expressways (BDOT10k road classes)
NODE_TOLERANCE_M = 0.5  # road end points closer than this are one node (also the graph's)
# BDOT10k OT_KUKO_A (kompleks komunikacyjny) and OT_OIKM_P (obiekt związany z komunikacją)
KUKO_AIRPORT = "KUKO02"  # lotnisko lub lądowisko
KUKO_STATION = "KUKO06"  # stacja kolejowa
OIKM_RAIL_STOP = "OIKM05"  # przystanek kolejowy
# KUKO02 holds landing strips and hospital helipads as well as airports: an airport an
# investor asks about has a runway and terminal area of tens of hectares at least
MIN_AIRPORT_HA = 50.0
PASSENGER = "passenger"  # the canonical ``stations.kind`` of a passenger station


def _empty(key: str) -> gpd.GeoDataFrame:
    frame = {c: pd.Series([], dtype=object) for c in REFERENCE_COLUMNS[key]}
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=WORK_CRS), crs=WORK_CRS)


def single_lines(geoms: np.ndarray) -> np.ndarray:
    """One LineString per road row (a multi-part line keeps its longest part), rows
    aligned: the road graph and the junctions derived here see the same lines."""
    lines = shapely.line_merge(geoms)
    multi = shapely.get_type_id(lines) != 1
    if multi.any():
        lines = lines.copy()
        for i in np.flatnonzero(multi):
            parts = shapely.get_parts(lines[i])
            lines[i] = parts[np.argmax(shapely.length(parts))] if len(parts) else None
    return lines


def junctions_from_roads(roads: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Entries to motorways and expressways: road nodes where an A/S segment ends on a
    segment of a lower class.

    BDOT10k cuts its road lines where roads meet on one level, not where one passes over
    another, so a shared end point is a connection. Each entry node is one point (a
    junction's ramps give several): the road graph lets a motorway be entered only near
    a junction point, so every ramp end must be one. ``road`` is the motorway's number
    (``A2``, ``S7``) where BDOT10k gives it.
    """
    if roads is None or not len(roads):
        return _empty("junctions")
    lines = single_lines(roads.geometry.to_numpy())
    ok = ~shapely.is_missing(lines) & ~shapely.is_empty(lines)
    lines = lines[ok]
    cls = roads["road_class"].astype(str).str.strip().str.upper().to_numpy()[ok]
    number = (
        roads["number"].fillna("").astype(str).str.strip().to_numpy()[ok]
        if "number" in roads
        else np.full(len(lines), "", dtype=object)
    )
    if not len(lines):
        return _empty("junctions")
    ends = np.vstack(
        [
            shapely.get_coordinates(shapely.get_point(lines, 0)),
            shapely.get_coordinates(shapely.get_point(lines, -1)),
        ]
    )
    key = np.round(ends / NODE_TOLERANCE_M).astype(np.int64)
    _, node = np.unique(key, axis=0, return_inverse=True)
    node = node.ravel()
    motorway = np.tile(np.isin(cls, MOTORWAY_CLASSES), 2)
    n_nodes = int(node.max()) + 1
    mw_ends = np.bincount(node[motorway], minlength=n_nodes)
    local_ends = np.bincount(node[~motorway], minlength=n_nodes)
    entry = (mw_ends > 0) & (local_ends > 0)
    if not entry.any():
        return _empty("junctions")
    # per entry node: the number of a motorway segment ending there
    seg_cls, seg_num = np.tile(cls, 2), np.tile(number, 2)
    first = pd.DataFrame(
        {"node": node[motorway], "cls": seg_cls[motorway], "num": seg_num[motorway]}
    )
    first = first.sort_values(["node", "num"], ascending=[True, False]).drop_duplicates("node")
    road = first.set_index("node").reindex(np.flatnonzero(entry))
    label = [
        n if n[:1].upper() in MOTORWAY_CLASSES else f"{c}{n}" if n else c
        for c, n in zip(road["cls"].astype(str), road["num"].fillna("").astype(str), strict=True)
    ]
    xy = np.zeros((n_nodes, 2))
    xy[node] = ends
    pts = shapely.points(xy[entry])
    return gpd.GeoDataFrame(
        {"name": [""] * len(pts), "road": label, "number": [""] * len(pts)},
        geometry=pts,
        crs=WORK_CRS,
    )


def _code(frame: gpd.GeoDataFrame) -> pd.Series:
    col = next((c for c in ("X_KOD", "XKOD", "KOD") if c in frame), None)
    if col is None:
        return pd.Series("", index=frame.index)
    return frame[col].fillna("").astype(str).str.strip().str.upper()


def _names(frame: gpd.GeoDataFrame) -> np.ndarray:
    if "NAZWA" not in frame:
        return np.full(len(frame), "", dtype=object)
    return frame["NAZWA"].fillna("").astype(str).str.strip().to_numpy()


def stations_from_bdot(
    complexes: gpd.GeoDataFrame | None, points: gpd.GeoDataFrame | None
) -> gpd.GeoDataFrame:
    """Passenger rail stations: BDOT10k station complexes (KUKO06, at their centroid)
    and rail stops (OIKM05). BDOT10k has no class for rail freight terminals, so none
    are derived."""
    parts = []
    if complexes is not None and len(complexes):
        sel = complexes[(_code(complexes) == KUKO_STATION).to_numpy()]
        if len(sel):
            parts.append((_names(sel), shapely.centroid(sel.geometry.to_numpy())))
    if points is not None and len(points):
        sel = points[(_code(points) == OIKM_RAIL_STOP).to_numpy()]
        if len(sel):
            parts.append((_names(sel), shapely.centroid(sel.geometry.to_numpy())))
    if not parts:
        return _empty("stations")
    names = np.concatenate([p[0] for p in parts])
    geoms = np.concatenate([p[1] for p in parts])
    return gpd.GeoDataFrame(
        {"name": names, "kind": [PASSENGER] * len(names)},
        geometry=geoms,
        crs=WORK_CRS,
    )


def airports_from_bdot(complexes: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """Airports: BDOT10k airport complexes (KUKO02) of at least ``MIN_AIRPORT_HA``, at
    their centroid; smaller ones are landing strips and helipads."""
    if complexes is None or not len(complexes):
        return _empty("airports")
    geoms = complexes.geometry.to_numpy()
    sel = (_code(complexes) == KUKO_AIRPORT).to_numpy() & (
        shapely.area(geoms) >= MIN_AIRPORT_HA * 1e4
    )
    if not sel.any():
        return _empty("airports")
    return gpd.GeoDataFrame(
        {"name": _names(complexes[sel]), "iata": [""] * int(sel.sum())},
        geometry=shapely.centroid(geoms[sel]),
        crs=WORK_CRS,
    )
