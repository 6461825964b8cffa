"""Read the raw folder into canonical layers in EPSG:2180, validated, with a quarantine."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio

from omw_sites.config import AREA_TOLERANCE
from omw_sites.etl.crs import check_extent, resolve_epsg
from omw_sites.etl.derive import (
    MIN_AIRPORT_HA,
    airports_from_bdot,
    junctions_from_roads,
    stations_from_bdot,
)
from omw_sites.etl.egib import (
    area_mismatch,
    ownership_class,
    parse_parcel_ids,
    read_egib_gml,
    read_ownership_table,
)
from omw_sites.etl.errors import IngestError
from omw_sites.etl.gesut import in_powiat, powiaty_of_lines, read_gesut
from omw_sites.etl.mpzp import DESIGNATION_COLUMNS, parse_symbols
from omw_sites.etl.numbers import to_number
from omw_sites.etl.planning_acts import read_app
from omw_sites.etl.plausibility import (
    check_gminy,
    check_near_parcels,
    raster_far_from_parcels,
)
from omw_sites.etl.validate import repair_geometries
from omw_sites.etl.vector import read_vector_file
from omw_sites.layers import (
    APP_GML_DIR,
    EGIB_GML_DIR,
    GESUT_GML_DIR,
    MANIFEST,
    OWNERSHIP_TABLE,
    RAW_BY_KEY,
    RAW_LAYERS,
    WORK_CRS,
    RawLayer,
)

QUARANTINE_COLUMNS = ["file", "layer", "record", "rule", "detail"]


@dataclass
class RawData:
    """Canonical layers of one region, ready for the criteria stage."""

    layers: dict[str, gpd.GeoDataFrame]
    dem_path: Path | None
    data_dates: dict[str, str]
    quarantine: pd.DataFrame
    stats: dict[str, dict[str, int]] = field(default_factory=dict)  # per layer: read/kept/…
    # layers the folder does not provide, or provides with no features: key -> why
    # (e.g. "no transport/wezly.gpkg", "layer 'OT_TCON_A' of bdot10k/bdot10k.gpkg is empty")
    absent: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # for the run summary

    def __getitem__(self, key: str) -> gpd.GeoDataFrame:
        return self.layers[key]

    def get(self, key: str) -> gpd.GeoDataFrame | None:
        return self.layers.get(key)

    def has(self, key: str) -> bool:
        """Whether layer ``key`` is there with at least one feature (``dem``: a raster)."""
        if key == "dem":
            return self.dem_path is not None
        layer = self.layers.get(key)
        return layer is not None and len(layer) > 0


def load_raw(raw_dir: str | Path, progress: Callable[[str, int], None] | None = None) -> RawData:
    """Read, reproject, validate and map every layer of ``raw_dir``.

    Only parcels are required: ``egib/dzialki.gpkg``, EGiB GML files in ``egib/``, or
    both. Every other layer may be missing (no file, or no such layer in its GeoPackage)
    or empty; ``RawData.absent`` says which and why, and the criteria that need it are
    left unmeasured (NaN) downstream.

    Raises
    ------
    IngestError
        No parcels; a layer that is there but unreadable, without a CRS or without a
        required column. Record-level defects do not raise: they are repaired or
        quarantined with a reason.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise IngestError(raw_dir, "raw data folder does not exist")
    load = _Loading(raw_dir, progress, _data_dates(raw_dir))
    _read_raw_layers(load)
    _add_egib_gml(load)
    _require_parcels(load)
    layers, absent, notes, dates = load.layers, load.absent, load.notes, load.dates
    check_gminy(layers, absent, notes)
    _add_app_gml(load)
    _add_gesut_gml(load)
    if "roads" in layers:
        roads = layers["roads"]
        layers["roads_main"] = roads[roads["road_class"].isin(MAIN_ROAD_CLASSES)].copy()
    check_near_parcels(layers, absent, notes)
    dem_path = load.dem_path
    if dem_path is not None and (why := raster_far_from_parcels(dem_path, layers["parcels"])):
        absent["dem"], dem_path = why, None
    _derive_transport(raw_dir, layers, absent, notes, dates)
    quarantine = [q for q in load.quarantine if len(q)]
    q_all = (
        pd.concat(quarantine, ignore_index=True)
        if quarantine
        else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    )
    for key in absent:  # a date for data that is not there would date an empty column
        dates.pop(key, None)
    return RawData(layers, dem_path, dates, q_all, load.stats, absent, notes)


@dataclass
class _Loading:
    """What :func:`load_raw` has gathered so far."""

    raw_dir: Path
    progress: Callable[[str, int], None] | None
    dates: dict[str, str]
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    quarantine: list[pd.DataFrame] = field(default_factory=list)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dem_path: Path | None = None

    def report(self, what: str, count: int) -> None:
        if self.progress:
            self.progress(what, count)

    def gml_read(self, key: str, files: list[Path], label: str) -> None:
        """Date and report layer ``key`` read from the GML ``files``."""
        self.dates.setdefault(key, max(_mtime_date(f) for f in files))
        if self.progress:
            self.progress(label, sum(self.stats[f.name]["kept"] for f in files))


def _read_raw_layers(load: _Loading) -> None:
    """Every layer of the raw folder's own layout (``layers.RAW_LAYERS``) that is there."""
    names: dict[Path, list[str]] = {}  # layers of each GeoPackage, listed once
    for spec in RAW_LAYERS:
        path = load.raw_dir / spec.path
        if not path.exists():
            load.absent[spec.key] = f"no {spec.path}"
            continue
        if spec.geom == "raster":
            load.dem_path = _check_raster(path)
            load.dates.setdefault(spec.key, _mtime_date(path))
            continue
        if spec.layer is not None:
            if path not in names:
                names[path] = _layer_names(path)
            if spec.layer not in names[path]:
                load.absent[spec.key] = f"{spec.path} has no layer {spec.layer!r}"
                continue
        mapped, q, q2, n_read, repaired = read_raw_layer(path, spec)
        load.layers[spec.key] = mapped
        load.quarantine += [q, q2]
        load.stats[spec.key] = {
            "read": n_read,
            "kept": len(mapped),
            "repaired": repaired,
            "quarantined": len(q) + len(q2),
        }
        if not len(mapped):
            where = f"layer {spec.layer!r} of {spec.path}" if spec.layer else spec.path
            load.absent[spec.key] = (
                f"{where} is empty" if not n_read else f"{where}: no usable feature"
            )
        load.dates.setdefault(spec.key, _mtime_date(path))
        load.report(spec.key, len(mapped))


def _add_egib_gml(load: _Loading) -> None:
    """Parcels of the EGiB GML exports in ``egib/``, merged with those of the GeoPackage."""
    gml_files = sorted((load.raw_dir / EGIB_GML_DIR).glob("*.gml"))
    if not gml_files:
        return
    load.layers["parcels"], q_gml = _merge_gml_parcels(
        load.layers.get("parcels"), gml_files, load.stats, load.raw_dir / OWNERSHIP_TABLE
    )
    load.quarantine.append(q_gml)
    load.absent.pop("parcels", None)
    load.gml_read("parcels", gml_files, "parcels (EGiB GML)")


def _require_parcels(load: _Loading) -> None:
    if len(load.layers.get("parcels", ())):
        return
    spec = RAW_BY_KEY["parcels"]
    why = load.absent.get("parcels", "no parcels")
    msg = (
        f"no parcels ({why}): put the powiat's EGiB parcels in {EGIB_GML_DIR}/ — "
        f"{spec.path} (layer {spec.layer!r}, column ID_DZIALKI) or the EGiB GML export "
        f"({EGIB_GML_DIR}/*.gml)"
    )
    raise IngestError(load.raw_dir / EGIB_GML_DIR, msg, rule="parcels required")


def _add_app_gml(load: _Loading) -> None:
    """Plan zones of the APP GML files in ``app/``."""
    app_files = sorted((load.raw_dir / APP_GML_DIR).glob("*.gml"))
    if not app_files:
        return
    zones, q_app = _merge_app_zones(load.layers.get("plan_zones"), app_files, load.stats)
    load.layers["plan_zones"] = zones
    load.quarantine.append(q_app)
    load.absent.pop("plan_zones", None)
    load.gml_read("plan_zones", app_files, "plan_zones (APP GML)")


def _add_gesut_gml(load: _Loading) -> None:
    """Utility lines of the GESUT GML files, kept to the region's powiaty."""
    gesut_files = sorted((load.raw_dir / GESUT_GML_DIR).glob("*.gml"))
    if not gesut_files:
        return
    lines, q_gesut = _merge_gesut_lines(
        load.layers.get("utilities"),
        load.layers.get("gminy"),
        gesut_files,
        load.stats,
        load.notes,
    )
    load.layers["utilities"] = lines
    load.quarantine.append(q_gesut)
    if len(lines):
        load.absent.pop("utilities", None)
    load.gml_read("utilities", gesut_files, "utilities (GESUT GML)")


MAIN_ROAD_CLASSES = ("A", "S", "GP", "G")  # the ``roads_main`` reference layer

# BDOT10k classes read only to derive stations and airports when no layer gives them
BDOT_COMPLEXES = RawLayer("bdot_complexes", RAW_BY_KEY["roads"].path, "OT_KUKO_A", "polygon")
BDOT_TRANSPORT_POINTS = RawLayer("bdot_points", RAW_BY_KEY["roads"].path, "OT_OIKM_P", "point")


def _derive_transport(
    raw_dir: Path,
    layers: dict[str, gpd.GeoDataFrame],
    absent: dict[str, str],
    notes: list[str],
    dates: dict[str, str],
) -> None:
    """Junctions, stations and airports that the folder does not give, derived from what
    it does (:mod:`omw_sites.etl.derive`); each derivation is one line of the summary."""
    missing = [k for k in ("junctions", "stations", "airports") if not len(layers.get(k, ()))]
    if not missing:
        return
    if "junctions" in missing and len(layers.get("roads", ())):
        derived = junctions_from_roads(layers["roads"])
        if len(derived):
            layers["junctions"] = derived
            notes.append(
                f"junctions derived from the road network ({absent.get('junctions', '')}): "
                f"{len(derived)} points where a motorway or expressway meets a lower-class road"
            )
            absent.pop("junctions", None)
            if "roads" in dates:
                dates["junctions"] = dates["roads"]
    if not ({"stations", "airports"} & set(missing)):
        return
    bdot = raw_dir / BDOT_COMPLEXES.path
    names = _layer_names(bdot) if bdot.exists() else []
    found = {}
    for spec in (BDOT_COMPLEXES, BDOT_TRANSPORT_POINTS):
        if spec.layer in names:
            found[spec.key] = read_raw_layer(bdot, spec)[0]
    for key, derived, source in (
        (
            "stations",
            stations_from_bdot(found.get("bdot_complexes"), found.get("bdot_points")),
            "BDOT10k rail station complexes and stops (OT_KUKO_A, OT_OIKM_P); "
            "no rail freight terminals",
        ),
        (
            "airports",
            airports_from_bdot(found.get("bdot_complexes")),
            f"BDOT10k airport complexes of {MIN_AIRPORT_HA:g} ha or more (OT_KUKO_A)",
        ),
    ):
        if key in missing and len(derived):
            layers[key] = derived
            notes.append(f"{key} derived from {source} ({absent.get(key, '')}): {len(derived)}")
            absent.pop(key, None)
            dates[key] = _mtime_date(bdot)


def _layer_names(path: Path) -> list[str]:
    """The layers of a GeoPackage; an unreadable file names itself."""
    try:
        return [str(n) for n, _ in pyogrio.list_layers(path)]
    except Exception as exc:
        raise IngestError(path, f"cannot read the file: {exc}") from exc


def _merge_gml_parcels(
    parcels: gpd.GeoDataFrame | None,
    files: list[Path],
    stats: dict[str, dict[str, int]],
    side_table: Path | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Parcels with the registration units of the EGiB GML ``files`` taken from the GML.

    The GPKG's parcels of a unit (WWPPGG_R) that a GML export covers are replaced by the
    GML's current versions; ``source`` says where each parcel came from. Without a GPKG
    the GML's parcels are the layer. Where the GML does not resolve a parcel's ownership
    (no JRG links), the ownership side table (``side_table``) gives it.
    """
    frames, qs = [], []
    for path in files:
        result = read_egib_gml(path)
        frame = result.frame.assign(source=result.source_format)
        frames.append(frame)
        qs.append(result.quarantine)
        stats[path.name] = {
            "read": result.read,
            "kept": len(frame),
            "repaired": result.repaired,
            "quarantined": len(result.quarantine),
        }
    gml = pd.concat(frames, ignore_index=True)
    if side_table is not None and side_table.exists():
        unknown = (gml["ownership"] == "other").to_numpy()
        if unknown.any():
            listed = ownership_class(read_ownership_table(side_table, gml["parcel_id"][unknown]))
            gml.loc[unknown, "ownership"] = listed.to_numpy()
    if parcels is None:
        columns = [*PARCEL_COLUMNS, "source"]
        out = gpd.GeoDataFrame(gml[columns].reset_index(drop=True), geometry="geometry")
        return out.set_crs(WORK_CRS, allow_override=True), pd.concat(qs, ignore_index=True)
    units = set(gml["parcel_id"].str.split(".", n=1).str[0])
    own_unit = parcels["parcel_id"].str.split(".", n=1).str[0]
    kept = parcels[~own_unit.isin(units).to_numpy()].assign(source="gpkg")
    columns = list(parcels.columns) + ["source"]
    merged = pd.concat([kept, gml[columns]], ignore_index=True)
    out = gpd.GeoDataFrame(merged, geometry="geometry", crs=parcels.crs)
    return out, pd.concat(qs, ignore_index=True) if qs else _empty_q()


# canonical parcel columns (what ``_parcels`` maps a GPKG to, and the GML reader gives)
PARCEL_COLUMNS = (
    "parcel_id",
    "teryt",
    "obreb",
    "number",
    "area_ha",
    "registered_area_ha",
    "area_mismatch",
    "ownership",
    "kw",
    "geometry",
)


def _merge_app_zones(
    zones: gpd.GeoDataFrame | None, files: list[Path], stats: dict[str, dict[str, int]]
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Plan ogólny zones with the gminy of the APP GML ``files`` taken from the GML."""
    frames, qs = [], []
    columns = ["symbol", "designation", "name", "teryt", "in_force_from"]
    for path in files:
        data = read_app(path)
        frame = data.zones.frame
        if not len(frame):
            raise IngestError(path, "no StrefaPlanistyczna zones", rule="plan zones present")
        frames.append(frame[[*columns, "geometry"]].assign(source=data.zones.source_format))
        qs.append(data.zones.quarantine)
        stats[path.name] = {
            "read": data.zones.read,
            "kept": len(frame),
            "repaired": data.zones.repaired,
            "quarantined": len(data.zones.quarantine),
        }
    app = pd.concat(frames, ignore_index=True)
    parts = [app]
    if zones is not None:
        parts.insert(0, zones[~zones["teryt"].isin(set(app["teryt"]))].assign(source="gpkg"))
    merged = pd.concat(parts, ignore_index=True)
    out = gpd.GeoDataFrame(merged, geometry="geometry", crs=WORK_CRS)
    return out, pd.concat(qs, ignore_index=True)


def _merge_gesut_lines(
    lines: gpd.GeoDataFrame | None,
    gminy: gpd.GeoDataFrame | None,
    files: list[Path],
    stats: dict[str, dict[str, int]],
    notes: list[str] | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Utility lines with the powiaty of the GESUT GML ``files`` taken from the GML.

    A GESUT export replaces the GPKG's lines whose midpoint lies in the powiaty its own
    lines lie in (each powiat holding at least ``GESUT_POWIAT_SHARE`` of them), told by
    the gmina boundaries. The number in its ``przestrzenNazw`` (``PL.PZGiK.<n>.GESUT``) is
    the producer's register number, not a TERYT code, and serves only as a label.
    ``source`` says where each line came from. Without a GPKG the GML's lines are the
    layer; without gmina boundaries nothing can be told apart, so both are kept (a line
    twice changes no distance) and ``notes`` says so.
    """
    columns = ["network", "status", "voltage", "diameter_mm", "operator"]
    frames, qs = [], []
    for path in files:
        result, _devices = read_gesut(path)
        frame = result.frame
        frames.append(frame[[*columns, "geometry"]].assign(source=result.source_format))
        qs.append(result.quarantine)
        stats[path.name] = {
            "read": result.read,
            "kept": len(frame),
            "repaired": result.repaired,
            "quarantined": len(result.quarantine),
        }
    gml = pd.concat(frames, ignore_index=True)
    q_out = pd.concat(qs, ignore_index=True).reindex(columns=QUARANTINE_COLUMNS)
    if lines is None:
        out = gpd.GeoDataFrame(
            gml[[*columns, "source", "geometry"]].reset_index(drop=True), geometry="geometry"
        )
        return out.set_crs(WORK_CRS, allow_override=True), q_out
    replaced = np.zeros(len(lines), dtype=bool)
    if gminy is None or not len(gminy):
        if notes is not None and len(lines):
            notes.append(
                "no gmina boundaries: the GESUT GML lines are added to the GeoPackage's "
                "instead of replacing those of their powiat"
            )
    else:
        for path, frame in zip(files, frames, strict=True):
            powiaty = powiaty_of_lines(frame.geometry.to_numpy(), gminy, GESUT_POWIAT_SHARE)
            for powiat in powiaty:
                replaced |= in_powiat(lines.geometry.to_numpy(), gminy, powiat)
            if notes is not None:
                what = (
                    f"replaces the GeoPackage's utility lines of powiat {', '.join(powiaty)}"
                    if powiaty
                    else "lies in none of the gminy: its lines are added to the GeoPackage's"
                )
                notes.append(f"GESUT {path.name}: {len(frame)} lines; {what}")
    kept = lines[~replaced].assign(source="gpkg")
    merged = pd.concat([kept, gml[[*kept.columns]]], ignore_index=True)
    out = gpd.GeoDataFrame(merged, geometry="geometry", crs=lines.crs)
    return out, q_out


GESUT_POWIAT_SHARE = 0.1  # a GESUT export covers the powiaty holding this share of its lines


# ----------------------------------------------------------------------------- reading


def read_raw_layer(path: Path, spec: RawLayer):
    """One vector layer of the raw layout as its canonical layer: read (CRS recognised,
    required columns checked), geometry repaired or quarantined, columns mapped.
    Returns (frame, quarantine of repair, quarantine of mapping, read, repaired)."""
    frame = _read_vector(path, spec)
    n_read = len(frame)
    frame, q, repaired = repair_geometries(
        frame, spec.layer or spec.key, str(path), _id_column(spec.key, frame)
    )
    mapped, q2 = _MAPPERS.get(spec.key, _identity)(frame, path, spec)
    return mapped, q, q2, n_read, repaired


def _read_vector(path: Path, spec: RawLayer) -> gpd.GeoDataFrame:
    """One layer of the raw folder through the same reader ``omw-sites ingest`` uses: CRS
    recognised (or an error naming the file), text checked against its declared encoding
    (bad bytes name the record and column), upper-case columns, required ones present,
    EPSG:2180."""
    return read_vector_file(path, spec.layer, required=spec.columns).frame


def _check_raster(path: Path) -> Path:
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise IngestError(path, "raster has no CRS", rule="layer has a CRS")
            epsg = resolve_epsg(src.crs.to_wkt())
            if epsg is None:
                raise IngestError(path, f"unrecognised raster CRS {src.crs}", rule="known CRS")
            check_extent(path, tuple(src.bounds), epsg)
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(path, f"cannot read the raster: {exc}") from exc
    return path


def _data_dates(raw_dir: Path) -> dict[str, str]:
    manifest = raw_dir / MANIFEST
    if not manifest.exists():
        return {}
    try:
        return dict(json.loads(manifest.read_text(encoding="utf-8")).get("data_dates", {}))
    except (ValueError, AttributeError) as exc:
        raise IngestError(manifest, f"manifest is not valid JSON: {exc}") from exc


def _mtime_date(path: Path) -> str:
    return dt.date.fromtimestamp(path.stat().st_mtime).isoformat()


def _id_column(key: str, gdf: gpd.GeoDataFrame) -> str | None:
    return "ID_DZIALKI" if key == "parcels" and "ID_DZIALKI" in gdf else None


def _col(gdf: pd.DataFrame, name: str, default: object = None) -> pd.Series:
    return gdf[name] if name in gdf else pd.Series(default, index=gdf.index, dtype=object)


def _empty_q() -> pd.DataFrame:
    return pd.DataFrame(columns=QUARANTINE_COLUMNS)


def _quarantine(path: Path, spec: RawLayer, records: pd.Series, rule: str, detail: str):
    """Quarantine rows for ``records`` (empty frame when there are none)."""
    if len(records) == 0:
        return _empty_q()
    return pd.DataFrame(
        {
            "file": str(path),
            "layer": spec.layer,
            "record": records.astype(str).to_numpy(),
            "rule": rule,
            "detail": detail,
        }
    )


def _frame(gdf: gpd.GeoDataFrame, columns: dict[str, pd.Series]) -> gpd.GeoDataFrame:
    out = gpd.GeoDataFrame(columns, geometry=gdf.geometry.to_numpy(), crs=gdf.crs)
    return out.reset_index(drop=True)


# ----------------------------------------------------------------------------- mapping
Mapper = Callable[[gpd.GeoDataFrame, Path, RawLayer], tuple[gpd.GeoDataFrame, pd.DataFrame]]


def _identity(gdf: gpd.GeoDataFrame, path: Path, spec: RawLayer):
    return gdf.reset_index(drop=True), _empty_q()


def _gminy(gdf, path, spec):
    teryt = gdf["JPT_KOD_JE"].astype(str).str.strip()
    return _frame(gdf, {"teryt": teryt, "name": gdf["JPT_NAZWA_"].astype(str)}), _empty_q()


def _parcels(gdf, path, spec):
    ids = gdf["ID_DZIALKI"].astype(str).str.strip()
    parts = parse_parcel_ids(ids)
    registered = to_number(_col(gdf, "POLE_EWIDENCYJNE"))
    groups = _col(gdf, "GRUPA_REJESTROWA")
    side = path.parent.parent / OWNERSHIP_TABLE
    if side.exists():
        # text classes or group codes: object, so that either fills the other
        groups = read_ownership_table(side, ids).astype(object).fillna(groups)
    bad_id = ~parts["valid"]
    dup = ids.duplicated(keep="first") & ~bad_id
    rows = [
        _quarantine(
            path,
            spec,
            ids[bad_id],
            "parcel ID WWPPGG_R.OOOO[.AR_n].NR[/sub]",
            "malformed parcel ID",
        ),
        _quarantine(
            path, spec, ids[dup], "unique parcel ID", "duplicate parcel ID; the first is kept"
        ),
    ]
    keep = ~(bad_id | dup)
    gdf, parts, ids, registered = gdf[keep], parts[keep], ids[keep], registered[keep]
    area_ha = gdf.geometry.area.to_numpy() / 1e4
    reg = registered.to_numpy(dtype=float)
    out = _frame(
        gdf,
        {
            "parcel_id": ids.to_numpy(),
            "teryt": parts["teryt"].to_numpy(),
            "obreb": parts["obreb"].to_numpy(),
            "number": parts["number"].to_numpy(),
            "area_ha": area_ha,
            "registered_area_ha": np.where(np.isnan(reg), area_ha, reg),
            "area_mismatch": area_mismatch(area_ha, reg, AREA_TOLERANCE),
            "ownership": ownership_class(groups[keep]).to_numpy(),
            "kw": _col(gdf, "KW", "").fillna("").astype(str).to_numpy(),
        },
    )
    return out, pd.concat(rows, ignore_index=True)


def _zoning(gdf, path, spec):
    col = next((c for c in DESIGNATION_COLUMNS if c in gdf), None)
    if col is None:
        msg = f"no designation column ({', '.join(DESIGNATION_COLUMNS)})"
        raise IngestError(path, msg, layer=spec.layer, rule="required columns")
    gdf = gdf.rename(columns={col: "SYMBOL"}) if col != "SYMBOL" else gdf
    parts = parse_symbols(gdf["SYMBOL"])
    out = _frame(
        gdf,
        {
            "plan_id": _col(gdf, "PLAN_ID", "").astype(str).to_numpy(),
            "teryt": _col(gdf, "TERYT", "").astype(str).to_numpy(),
            "plan_name": _col(gdf, "NAZWA_PLANU", "").astype(str).to_numpy(),
            "adopted": _col(gdf, "DATA_UCHWALENIA", "").astype(str).to_numpy(),
            "symbol_raw": gdf["SYMBOL"].astype(str).to_numpy(),
            "number": parts["number"].to_numpy(),
            "symbol": parts["symbol"].to_numpy(),
            "classes": parts["classes"].to_numpy(),
            "known": parts["known"].to_numpy(),
        },
    )
    unknown = ~parts["known"].to_numpy()
    q = _quarantine(  # kept in the layer, and reported
        path,
        spec,
        gdf["SYMBOL"].astype(str)[unknown],
        "known designation symbol (KPT 2023 code list)",
        "kept with its raw symbol; not matched to a class",
    )
    return out, q


def _plan_zones(gdf, path, spec):
    cols = {
        "symbol": gdf["SYMBOL"].astype(str).str.strip().str.upper(),
        "designation": _col(gdf, "OZNACZENIE", "").astype(str),
        "name": _col(gdf, "NAZWA", "").astype(str),
        "teryt": _col(gdf, "TERYT", "").astype(str),
        "in_force_from": _col(gdf, "OBOWIAZUJEOD", "").astype(str),
    }
    return _frame(gdf, {k: v.to_numpy() for k, v in cols.items()}), _empty_q()


def _roads(gdf, path, spec):
    cols = {
        "road_class": gdf["KLASADROGI"].astype(str).str.strip().str.upper(),
        "management": _col(gdf, "KATZARZADZANIA", "").astype(str),
        "number": _col(gdf, "NUMERDROGI", "").fillna("").astype(str),
    }
    return _frame(gdf, {k: v.to_numpy() for k, v in cols.items()}), _empty_q()


def _rail(gdf, path, spec):
    line = _col(gdf, "LINIA", None).fillna(_col(gdf, "NAZWA", "")).astype(str)
    return _frame(gdf, {"line": line.to_numpy()}), _empty_q()


def _named(code_col: str | None = None):
    def mapper(gdf, path, spec):
        cols = {"name": _col(gdf, "NAZWA", "").fillna("").astype(str).to_numpy()}
        if code_col:
            cols = {"code": _col(gdf, code_col, "").fillna("").astype(str).to_numpy(), **cols}
        return _frame(gdf, cols), _empty_q()

    return mapper


def _junctions(gdf, path, spec):
    cols = {
        "name": gdf["NAZWA"].astype(str).to_numpy(),
        "road": gdf["DROGA"].astype(str).to_numpy(),
        "number": _col(gdf, "NUMER", "").astype(str).to_numpy(),
    }
    return _frame(gdf, cols), _empty_q()


def _stations(gdf, path, spec):
    kind = gdf["RODZAJ"].astype(str).str.strip().str.lower()
    mapped = kind.map({"pasazerska": "passenger", "towarowa": "freight", "bocznica": "freight"})
    return _frame(
        gdf,
        {"name": gdf["NAZWA"].astype(str).to_numpy(), "kind": mapped.fillna("other").to_numpy()},
    ), _empty_q()


def _airports(gdf, path, spec):
    cols = {
        "name": gdf["NAZWA"].astype(str).to_numpy(),
        "iata": _col(gdf, "KOD_IATA", "").fillna("").astype(str).to_numpy(),
    }
    return _frame(gdf, cols), _empty_q()


_NETWORK = {"w": "water", "k": "sewer", "e": "power", "g": "gas", "c": "heat", "t": "telecom"}


def _utilities(gdf, path, spec):
    code = gdf["RODZAJSIECI"].astype(str).str.strip().str.lower()
    cols = {
        "network": code.map(_NETWORK).fillna("other").to_numpy(),
        "status": _col(gdf, "STATUS", "i")
        .astype(str)
        .str.lower()
        .map({"i": "existing", "p": "planned"})
        .fillna("existing")
        .to_numpy(),
        "voltage": _col(gdf, "TYP", "").fillna("").astype(str).to_numpy(),
        "diameter_mm": to_number(_col(gdf, "SREDNICA")).to_numpy(),
        "operator": _col(gdf, "WLADAJACY", "").fillna("").astype(str).to_numpy(),
    }
    return _frame(gdf, cols), _empty_q()


def _substations(gdf, path, spec):
    power = gdf[gdf["RODZAJSIECI"].astype(str).str.lower() == "e"]
    cols = {
        "name": _col(power, "NAZWA", "").fillna("").astype(str).to_numpy(),
        "capacity_mw": to_number(_col(power, "MOC_MW")).to_numpy(),
    }
    return _frame(power, cols), _empty_q()


_MAPPERS: dict[str, Mapper] = {
    "gminy": _gminy,
    "parcels": _parcels,
    "zoning": _zoning,
    "plan_zones": _plan_zones,
    "roads": _roads,
    "rail": _rail,
    "natura2000": _named("KOD"),
    "forest": _identity,
    "water": _identity,
    "power_lines": _identity,
    "junctions": _junctions,
    "stations": _stations,
    "airports": _airports,
    "utilities": _utilities,
    "substations": _substations,
    "flood": _named(),
}
