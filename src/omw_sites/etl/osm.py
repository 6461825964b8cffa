"""OpenStreetMap extracts (``.osm.pbf``, ``.osm``) as a source of roads, rail lines, rail
stations, motorway junctions and airports, read with GDAL's OSM driver (pyogrio).

OSM is used only for the layers the official data in the folder does not give: its road
classes are mapped to the BDOT10k classes the road graph uses (``highway=motorway`` → A,
``trunk`` → S when it is a ``motorroad`` or numbered S, else GP, ``primary`` → GP,
``secondary`` → G, ``tertiary`` → Z, ``unclassified``/``residential`` → L, ``service``
→ D; a ``*_link`` takes its road's class); paths, tracks and footways are not roads a
truck drives.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from omw_sites.etl.derive import MIN_AIRPORT_HA
from omw_sites.etl.errors import IngestError
from omw_sites.etl.result import LayerResult, concat_quarantine
from omw_sites.layers import WORK_CRS

HIGHWAY_CLASS = {
    "motorway": "A",
    "trunk": "GP",  # S when a motorroad or numbered S (see _road_class)
    "primary": "GP",
    "secondary": "G",
    "tertiary": "Z",
    "unclassified": "L",
    "residential": "L",
    "living_street": "L",
    "service": "D",
}
RAIL_KINDS = ("rail",)  # railway=* values of the lines kept (not tram, subway, disused)
STATION_KINDS = ("station", "halt")
# "key"=>"value" pairs of GDAL's other_tags column (hstore text, quotes escaped)
_TAG = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')


def read_osm(path: str | Path) -> list[LayerResult]:
    """The roads, rail lines, stations, junctions and airports of an OSM extract, each
    a canonical layer in EPSG:2180 (layers with no feature are left out)."""
    path = Path(path)
    fmt = "osm-pbf" if path.suffix.lower() == ".pbf" else "osm-xml"
    lines = _read(path, "lines")
    points = _read(path, "points")
    areas = _read(path, "multipolygons")
    frames = {
        "roads": _roads(lines),
        "rail": _rail(lines),
        "stations": _stations(points),
        "junctions": _junctions(points),
        "airports": _airports(points, areas),
    }
    return [
        LayerResult(key, frame, concat_quarantine([]), fmt, layer, "EPSG:4326", len(frame))
        for (key, frame), layer in zip(frames.items(), _OSM_LAYER, strict=True)
        if len(frame)
    ]


_OSM_LAYER = ("lines", "lines", "points", "points", "points+multipolygons")


def _read(path: Path, layer: str) -> gpd.GeoDataFrame:
    try:
        frame = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:
        raise IngestError(path, f"cannot read the OpenStreetMap file: {exc}", layer=layer) from exc
    if frame.crs is None:
        frame = frame.set_crs(4326)
    return frame.to_crs(WORK_CRS)


def tag(frame: pd.DataFrame, key: str) -> pd.Series:
    """Tag ``key`` of each feature: its own column where GDAL gives one, else from
    ``other_tags``; "" where the feature has no such tag."""
    if key in frame:
        own = frame[key].fillna("").astype(str)
        if own.ne("").any() or "other_tags" not in frame:
            return own
    if "other_tags" not in frame:
        return pd.Series("", index=frame.index, dtype=object)
    pattern = re.compile(rf'"{re.escape(key)}"=>"((?:[^"\\]|\\.)*)"')
    found = frame["other_tags"].fillna("").astype(str).str.extract(pattern, expand=False)
    return found.fillna("").str.replace(r"\\(.)", r"\1", regex=True)


def _empty() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=WORK_CRS))


def _road_class(highway: pd.Series, ref: pd.Series, motorroad: pd.Series) -> pd.Series:
    base = highway.str.replace(r"_link$", "", regex=True)
    cls = base.map(HIGHWAY_CLASS)
    expressway = (base == "trunk") & (motorroad.eq("yes") | ref.str.match(r"^S\s*\d"))
    return cls.mask(expressway, "S")


def _roads(lines: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if not len(lines):
        return _empty()
    highway = tag(lines, "highway").str.strip().str.lower()
    ref = tag(lines, "ref").str.strip()
    cls = _road_class(highway, ref, tag(lines, "motorroad").str.lower())
    keep = cls.notna().to_numpy()
    return gpd.GeoDataFrame(
        {
            "road_class": cls[keep].to_numpy(dtype=object),
            "management": "",
            "number": ref[keep].str.replace(r"^[A-Z]+\s*", "", regex=True).to_numpy(),
            "name": tag(lines, "name")[keep].to_numpy(),
        },
        geometry=lines.geometry.to_numpy()[keep],
        crs=WORK_CRS,
    )


def _rail(lines: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if not len(lines):
        return _empty()
    keep = tag(lines, "railway").str.strip().str.lower().isin(RAIL_KINDS).to_numpy()
    ref, name = tag(lines, "ref")[keep], tag(lines, "name")[keep]
    return gpd.GeoDataFrame(
        {"line": ref.where(ref.ne(""), name).to_numpy()},
        geometry=lines.geometry.to_numpy()[keep],
        crs=WORK_CRS,
    )


def _stations(points: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if not len(points):
        return _empty()
    railway = tag(points, "railway").str.strip().str.lower()
    keep = railway.isin(STATION_KINDS).to_numpy()
    freight = tag(points, "station").str.lower().eq("freight") | tag(points, "usage").eq("freight")
    kind = np.where(freight.to_numpy()[keep], "freight", "passenger")
    return gpd.GeoDataFrame(
        {"name": tag(points, "name")[keep].to_numpy(), "kind": kind},
        geometry=points.geometry.to_numpy()[keep],
        crs=WORK_CRS,
    )


def _junctions(points: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if not len(points):
        return _empty()
    keep = tag(points, "highway").str.strip().str.lower().eq("motorway_junction").to_numpy()
    return gpd.GeoDataFrame(
        {
            "name": tag(points, "name")[keep].to_numpy(),
            "road": "",
            "number": tag(points, "ref")[keep].to_numpy(),
        },
        geometry=points.geometry.to_numpy()[keep],
        crs=WORK_CRS,
    )


def _airports(points: gpd.GeoDataFrame, areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``aeroway=aerodrome``: areas of at least ``MIN_AIRPORT_HA`` or with an IATA code
    (at their centroid), points with an IATA code; smaller ones are airstrips."""
    parts = []
    for frame, is_area in ((areas, True), (points, False)):
        if not len(frame):
            continue
        iata = tag(frame, "iata").str.strip().str.upper()
        aerodrome = tag(frame, "aeroway").str.strip().str.lower().eq("aerodrome").to_numpy()
        geoms = frame.geometry.to_numpy()
        big = shapely.area(geoms) >= MIN_AIRPORT_HA * 1e4 if is_area else False
        keep = aerodrome & (iata.ne("").to_numpy() | big)
        if keep.any():
            parts.append(
                gpd.GeoDataFrame(
                    {"name": tag(frame, "name")[keep].to_numpy(), "iata": iata[keep].to_numpy()},
                    geometry=shapely.centroid(geoms[keep]),
                    crs=WORK_CRS,
                )
            )
    if not parts:
        return _empty()
    out = pd.concat(parts, ignore_index=True)
    # an airport mapped both as an area and as a point: one, by its IATA code
    dup = out["iata"].ne("") & out["iata"].duplicated()
    return gpd.GeoDataFrame(out[~dup.to_numpy()].reset_index(drop=True), crs=WORK_CRS)
