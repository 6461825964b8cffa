"""Read the raw folder into canonical layers in EPSG:2180, validated, with a quarantine."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import rasterio.warp

from omw_sites.config import AREA_TOLERANCE
from omw_sites.etl import window
from omw_sites.etl.bdot import CLASS_LAYER, expand_columns, read_bdot, road_width
from omw_sites.etl.bdot import _read_gml as read_bdot_gml_class
from omw_sites.etl.crs import check_extent, resolve_epsg
from omw_sites.etl.derive import (
    MIN_AIRPORT_HA,
    airports_from_bdot,
    junctions_from_roads,
    stations_from_bdot,
)
from omw_sites.etl.detect import (
    DERIVE_CLASSES,
    bdot_name_class,
    classify_layers,
    unused_bdot,
)
from omw_sites.etl.egib import (
    area_mismatch,
    load_ownership_table,
    ownership_class,
    parse_parcel_ids,
    read_egib_gml,
    read_egib_vector,
    read_ownership_table,
)
from omw_sites.etl.egib_land import FEATURE_KEYS, holds_land, merged, read_egib_land
from omw_sites.etl.errors import IngestError
from omw_sites.etl.gesut import in_powiat, powiaty_of_lines, read_gesut
from omw_sites.etl.gml import DEFAULT_LIMITS
from omw_sites.etl.mpzp import DESIGNATION_COLUMNS, parse_symbols, plan_parameters
from omw_sites.etl.numbers import to_number
from omw_sites.etl.osm import read_osm
from omw_sites.etl.planning_acts import PARAMETERS, read_app
from omw_sites.etl.plausibility import (
    check_gminy,
    check_near_parcels,
    raster_far_from_parcels,
)
from omw_sites.etl.raster import xyz_crs
from omw_sites.etl.raw_folder import RawFile, discover, manifest
from omw_sites.etl.validate import repair_geometries
from omw_sites.etl.vector import read_vector_file
from omw_sites.layers import MANIFEST, RAW_BY_KEY, RAW_LAYERS, WORK_CRS, RawLayer

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
    # what each file of the folder became (raw_folder.manifest): run_info["files"]
    files: list[dict[str, Any]] = field(default_factory=list)
    # the folder zips were unpacked to, kept as long as the data (the DEM is read later)
    scratch: tempfile.TemporaryDirectory | None = field(default=None, repr=False)
    # layers the folder gives but with no feature in the window read (a partition of a
    # partitioned run): there, with nothing near (their frames are empty)
    outside: set[str] = field(default_factory=set)

    def __getitem__(self, key: str) -> gpd.GeoDataFrame:
        return self.layers[key]

    def get(self, key: str) -> gpd.GeoDataFrame | None:
        return self.layers.get(key)

    def has(self, key: str) -> bool:
        """Whether layer ``key`` is there with at least one feature (``dem``: a raster)."""
        if key == "dem":
            return self.dem_path is not None
        layer = self.layers.get(key)
        return layer is not None and (len(layer) > 0 or key in self.outside)


def load_raw(
    raw_dir: str | Path,
    progress: Callable[[str, int], None] | None = None,
    within: window.Window | None = None,
    keys: Collection[str] | None = None,
    skip: Collection[str] = (),
    files: list[RawFile] | None = None,
    vector_layers: Mapping[str, list[LayerListing]] | None = None,
) -> RawData:
    """Read, reproject, validate and map every layer of ``raw_dir`` (a folder, or one zip).

    Every file under ``raw_dir`` (recursively, through zips) is told by its content
    (:mod:`omw_sites.etl.raw_folder`), whatever its folder or name: the layout ``omw-sites
    demo build`` writes is one layout among others. Only parcels are required (EGiB
    GPKG/SHP/GeoJSON exports, EGiB GML, or both). Every other layer may be missing or
    empty; ``RawData.absent`` says which and why, and the criteria that need it are left
    unmeasured (NaN) downstream. ``RawData.files`` says what each file became.

    A partition of a partitioned run reads only ``within`` (see
    :mod:`omw_sites.etl.window`) and only the canonical layers ``keys`` (parcels are
    then required only when asked for); the files named in ``skip`` (as the folder lists
    them) are left unread. ``files`` is the folder's files as :func:`discover` told them
    (a partitioned run tells them once), when not from a zip; ``vector_layers`` the
    layers of its vector files with their extents (by file, as the folder lists them),
    so that a window skips the layers with nothing in it.

    Raises
    ------
    IngestError
        No parcels; a layer that is there but unreadable, without a CRS or without a
        required column. Record-level defects do not raise: they are repaired or
        quarantined with a reason. A file of no known format is listed, not an error.
    """
    raw_dir = Path(raw_dir)
    one_zip = raw_dir.is_file() and raw_dir.suffix.lower() == ".zip"  # a download as is
    if not raw_dir.is_dir() and not one_zip:
        raise IngestError(raw_dir, "raw data folder does not exist")
    scratch = tempfile.TemporaryDirectory(prefix="omw-raw-")
    load = _Loading(raw_dir, progress, {} if one_zip else _data_dates(raw_dir))
    load.wanted = frozenset(keys) if keys is not None else None
    load.listed = vector_layers or {}
    load.files = (
        copy.deepcopy(files) if files is not None else discover([raw_dir], Path(scratch.name))
    )
    for rf in load.files:
        if rf.name in skip:
            rf.skip("nothing of it in this partition's window")
    with load.naming(), window.reading(within):
        for rf in load.files:  # a data file that cannot be read stops the run, named
            if rf.broken and rf.error is not None:
                raise rf.error
        _read_vector_files(load)
        _read_bdot_gml(load)
        _apply_ownership(load)
        if load.wants("parcels"):
            _add_egib_gml(load)
            _require_parcels(load)
        layers, absent, notes, dates = load.layers, load.absent, load.notes, load.dates
        check_gminy(layers, absent, notes, where=load.where())
        if load.wants("plan_zones"):
            _add_app_gml(load)
        if load.wants("utilities"):
            _add_gesut_gml(load)
        _clip_to_window(load)
        if "roads" in layers:
            roads = layers["roads"]
            layers["roads_main"] = roads[roads["road_class"].isin(MAIN_ROAD_CLASSES)].copy()
        if within is None and "parcels" in layers:  # a window is near the parcels already
            check_near_parcels(layers, absent, notes, where=load.where())
        _note_unknown_symbols(layers.get("zoning"), notes)
        if load.wants("dem") and "parcels" in layers:
            _read_dem(load, Path(scratch.name))
        _transport(load)
    _name_absent(load)
    quarantine = [load.renamed(q) for q in load.quarantine if len(q)]
    q_all = (
        pd.concat(quarantine, ignore_index=True)
        if quarantine
        else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    )
    for key in absent:  # a date for data that is not there would date an empty column
        dates.pop(key, None)
    _name_unused(load)
    return RawData(
        layers, load.dem_path, dates, q_all, load.stats, absent, notes,
        files=manifest(load.files), scratch=scratch, outside=load.outside,
    )  # fmt: skip


UNKNOWN_SYMBOLS_LISTED = 12  # the most frequent unknown designation symbols named


def _note_unknown_symbols(zoning: gpd.GeoDataFrame | None, notes: list[str]) -> None:
    """One summary line counting the zones whose designation symbol is not in the code
    list, per symbol (they are kept, unmatched to a class, and in the quarantine)."""
    if zoning is None or not len(zoning) or "known" not in zoning:
        return
    unknown = zoning.loc[~zoning["known"].astype(bool), "symbol_raw"].astype(str)
    if not len(unknown):
        return
    counts = unknown.value_counts()
    named = ", ".join(f"{sym} ×{n}" for sym, n in counts.head(UNKNOWN_SYMBOLS_LISTED).items())
    more = len(counts) - UNKNOWN_SYMBOLS_LISTED
    rest = f" and {more} more" if more > 0 else ""
    notes.append(
        f"zoning: {len(unknown)} of {len(zoning)} zones have a designation symbol not in the "
        f"code list, kept but matched to no class: {named}{rest}"
    )


@dataclass
class _Loading:
    """What :func:`load_raw` has gathered so far."""

    raw_dir: Path
    progress: Callable[[str, int], None] | None
    dates: dict[str, str]
    files: list[RawFile] = field(default_factory=list)
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    quarantine: list[pd.DataFrame] = field(default_factory=list)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dem_path: Path | None = None
    sources: dict[str, list[str]] = field(default_factory=dict)  # key -> files giving it
    empty: dict[str, str] = field(default_factory=dict)  # key -> why its files gave none
    wanted: frozenset[str] | None = None  # the canonical layers to read (None: all)
    listed: Mapping[str, list[LayerListing]] = field(default_factory=dict)  # see load_raw
    outside: set[str] = field(default_factory=set)  # see RawData.outside

    def wants(self, key: str) -> bool:
        return self.wanted is None or key in self.wanted

    def report(self, what: str, count: int) -> None:
        if self.progress:
            self.progress(what, count)

    def of(self, *formats: str) -> list[RawFile]:
        """The usable files of these formats (a prefix matches: ``egib-gml``)."""
        return [f for f in self.files if not f.why and f.format.startswith(formats)]

    def where(self) -> dict[str, str]:
        """Per layer, the files it came from, as a person finds them."""
        return {k: ", ".join(dict.fromkeys(v)) for k, v in self.sources.items()}

    def gml_read(self, key: str, files: list[RawFile], label: str) -> None:
        """Date, name and report layer ``key`` read from the GML ``files``."""
        self.dates.setdefault(key, max(f.date for f in files))
        for f in files:
            st = self.stats.get(f.path.name, {})
            f.add(key, "", st.get("read", 0), st.get("kept", 0))
            if st.get("kept"):
                self.sources.setdefault(key, []).append(f.name)
        if self.progress:
            self.progress(label, sum(self.stats.get(f.path.name, {}).get("kept", 0) for f in files))

    def renamed(self, q: pd.DataFrame) -> pd.DataFrame:
        """Quarantine rows naming files as found (``pkg.zip/member``), not as unpacked."""
        names = {str(f.path): f.name for f in self.files}
        if "file" in q and len(q):
            q = q.assign(file=q["file"].astype(str).replace(names))
        return q

    @contextmanager
    def naming(self) -> Iterator[None]:
        """An error in a file unpacked from a zip names the file as found."""
        try:
            yield
        except IngestError as exc:
            names = {str(f.path): f.name for f in self.files}
            if exc.file in names:
                raise IngestError(
                    names[exc.file], exc.problem, layer=exc.layer, record=exc.record,
                    rule=exc.rule,
                ) from exc  # fmt: skip
            raise


# a vector file's layer as a partitioned run's plan lists it: name, canonical key (None:
# not used, and why), extent in EPSG:2180 (None: not known)
LayerListing = tuple[str, str | None, str, tuple[float, float, float, float] | None]
# vector formats whose layers are told one by one (detect.layer_key)
VECTOR_FORMATS = ("egib-vector", "bdot10k-vector", "mpzp-vector", "raw-layout")
# canonical layers a BDOT10k class gives, and the classes read only to derive from
BDOT_LAYER_KEYS = frozenset(CLASS_LAYER.values())


def _read_vector_files(load: _Loading) -> None:
    """Every layer of every vector file (GPKG, SHP, GeoJSON) that holds a canonical layer,
    concatenated per layer; parcels listed twice (a GPKG and a GeoJSON of the same
    export) are kept once."""
    pieces: dict[str, list[gpd.GeoDataFrame]] = {}
    missed: dict[str, tuple[RawFile, str]] = {}  # key -> a layer of it outside the window
    for rf in load.of(*VECTOR_FORMATS):
        listing = load.listed.get(rf.name)
        if listing is None:
            listing = [(layer, key, why, None) for layer, key, why in classify_layers(rf.path)]
        for layer, key, why, extent in listing:
            if key is None:
                rf.layers.append({"layer": layer, "key": None, "why": why})
                continue
            if not load.wants(key):
                continue
            with window.layer(key):
                if window.misses(extent):
                    missed.setdefault(key, (rf, layer))
                    continue
                frame = _read_vector_layer(load, rf, layer, key)
            pieces.setdefault(key, []).append(frame)
            load.dates.setdefault(key, rf.date)
            load.report(key, len(frame))
    for key, (rf, layer) in missed.items():
        if key not in pieces:  # one read of it gives the layer's empty, windowed frame
            with window.layer(key):
                pieces[key] = [_read_vector_layer(load, rf, layer, key)]
            load.dates.setdefault(key, rf.date)
    for key, frames in pieces.items():
        layer = frames[0] if len(frames) == 1 else _concat(frames)
        if key == "parcels" and len(frames) > 1:
            layer = _unique_parcels(load, layer)
        load.layers[key] = layer
        if not len(layer) and key not in load.outside:
            load.absent[key] = load.empty[key]


def _read_vector_layer(load: _Loading, rf: RawFile, layer: str, key: str) -> gpd.GeoDataFrame:
    """One layer of a vector file as canonical layer ``key``; counted and named."""
    spec = RAW_BY_KEY.get(key) or RawLayer(key, rf.name, layer, "")
    spec = dataclasses.replace(spec, path=rf.name, layer=layer)
    if key == "parcels" and "ID_DZIALKI" not in _columns(rf.path, layer):
        # an EGiB export under another ID column (idDzialki, IDENTYFIKATOR, a WFS fid)
        result = read_egib_vector(rf.path, layer)
        mapped = result.frame[list(PARCEL_COLUMNS)]
        qs, n_read, repaired, crs_in = (
            [result.quarantine],
            result.read,
            result.repaired,
            result.crs_in,
        )
    else:
        mapped, q1, q2, n_read, repaired = _read_whole_once(rf.path, spec)
        qs, crs_in = [q1, q2], _crs_name(rf.path, layer)
    load.quarantine += qs
    st = load.stats.setdefault(key, {"read": 0, "kept": 0, "repaired": 0, "quarantined": 0})
    st["read"] += n_read
    st["kept"] += len(mapped)
    st["repaired"] += repaired
    st["quarantined"] += sum(len(q) for q in qs)
    rf.add(key, layer, n_read, len(mapped), crs_in)
    if len(mapped):
        load.sources.setdefault(key, []).append(rf.name)
    elif window.current() is not None and pyogrio.read_info(rf.path, layer=layer)["features"]:
        load.outside.add(key)  # features elsewhere, none in the window
    else:
        where = f"layer {layer!r} of {rf.name}"
        load.empty.setdefault(
            key, f"{where} is empty" if not n_read else f"{where}: no usable feature"
        )
    return mapped


def _crs_name(path: Path, layer: str) -> str:
    """The layer's own CRS as GDAL names it (``EPSG:2178``), for the manifest."""
    try:
        return str(pyogrio.read_info(path, layer=layer).get("crs") or "")
    except Exception:  # the reader has read it: a name is only a label here
        return ""


def _columns(path: Path, layer: str) -> set[str]:
    return {str(c).upper() for c in pyogrio.read_info(path, layer=layer)["fields"]}


def _concat(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    out = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=WORK_CRS)


def _unique_parcels(load: _Loading, parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Parcels listed by more than one file, kept once (the first file's copy)."""
    dup = parcels["parcel_id"].duplicated(keep="first").to_numpy()
    if dup.any():
        load.notes.append(
            f"parcels: {int(dup.sum()):,} parcel IDs given by more than one file "
            f"({load.where().get('parcels', '')}): the first file's copy kept"
        )
        parcels = parcels[~dup].reset_index(drop=True)
    return parcels


def _read_bdot_gml(load: _Loading) -> None:
    """BDOT10k GML files as a powiat's package holds them (one class per file,
    ``PL.PZGiK.<n>.<TERYT4>__OT_<CLASS>_<geom>.xml``); classes the tool does not use are
    listed, not read."""
    pieces: dict[str, list[gpd.GeoDataFrame]] = {}
    for rf in load.of("bdot10k-gml"):
        cls = bdot_name_class(Path(rf.name).name)
        key = CLASS_LAYER.get(cls or "") or DERIVE_CLASSES.get(cls or "")
        if cls is not None and key is None:
            rf.skip(unused_bdot(Path(rf.name).name))
            continue
        if key is not None and not load.wants(key):
            continue
        if key in DERIVE_CLASSES.values():  # the raw BDOT10k attributes (X_KOD, NAZWA)
            frame, _, layer, crs_in = read_bdot_gml_class(rf.path, cls, None, DEFAULT_LIMITS)
            n_read = len(frame)
        else:
            result = read_bdot(rf.path, cls=cls)
            key, frame, layer, crs_in = result.key, result.frame, result.layer, result.crs_in
            n_read = result.read
            load.quarantine.append(result.quarantine)
        assert key is not None
        rf.add(key, layer, n_read, len(frame), crs_in)
        st = load.stats.setdefault(key, {"read": 0, "kept": 0, "repaired": 0, "quarantined": 0})
        st["read"] += n_read
        st["kept"] += len(frame)
        if len(frame):
            load.sources.setdefault(key, []).append(rf.name)
            pieces.setdefault(key, []).append(frame)
        load.dates.setdefault(key, rf.date)
    for key, frames in pieces.items():
        have = load.layers.get(key)
        load.layers[key] = _concat([*([have] if have is not None and len(have) else []), *frames])
        load.absent.pop(key, None)
        load.report(key, len(load.layers[key]))


def _apply_ownership(load: _Loading) -> None:
    """The ownership side tables (``ID_DZIALKI`` + ownership), wherever they lie, give
    the ownership of the parcels they list."""
    tables = load.of("ownership-csv")
    parcels = load.layers.get("parcels")
    for rf in tables:
        listed = 0
        if parcels is not None and len(parcels):
            groups = read_ownership_table(rf.path, parcels["parcel_id"])
            known = groups.notna().to_numpy()
            if known.any():
                parcels.loc[known, "ownership"] = ownership_class(groups[known]).to_numpy()
            listed = int(known.sum())
        rf.add("ownership", "", len(load_ownership_table(rf.path)), listed)


def _add_egib_gml(load: _Loading) -> None:
    """Parcels of the EGiB GML exports, merged with those of the vector exports."""
    files = load.of("egib-gml")
    if not files:
        return
    load.layers["parcels"], q_gml = _merge_gml_parcels(
        load.layers.get("parcels"),
        [f.path for f in files],
        load.stats,
        [f.path for f in load.of("ownership-csv")],
    )
    load.quarantine.append(q_gml)
    load.absent.pop("parcels", None)
    load.gml_read("parcels", files, "parcels (EGiB GML)")
    _add_egib_land(load, files)


def _add_egib_land(load: _Loading, files: list[RawFile]) -> None:
    """Land-use and soil-class contours and buildings of the EGiB GML exports, added to
    those the other files give."""
    pieces: dict[str, list[gpd.GeoDataFrame]] = {}
    names = {v: k for k, v in FEATURE_KEYS.items()}
    for rf in files:
        if not holds_land(rf.path):
            continue
        for key, frame in read_egib_land(rf.path).items():
            pieces.setdefault(key, []).append(frame)
            rf.add(key, names[key], len(frame), len(frame))
            load.sources.setdefault(key, []).append(rf.name)
            load.dates.setdefault(key, rf.date)
    for key, frames in pieces.items():
        have = load.layers.get(key)
        load.layers[key] = merged([*([have] if have is not None and len(have) else []), *frames])
        load.absent.pop(key, None)
        load.report(key, len(load.layers[key]))


def _clip_to_window(load: _Loading) -> None:
    """Layers read whole (GML) limited to the window like those GDAL read within it."""
    if not window.limited():
        return
    for key, frame in list(load.layers.items()):
        if frame is None or not len(frame):
            continue
        clipped = window.clip(frame, key)
        load.layers[key] = clipped
        if clipped is not None and not len(clipped):
            load.outside.add(key)
            load.absent.pop(key, None)


def _require_parcels(load: _Loading) -> None:
    if len(load.layers.get("parcels", ())):
        return
    why = load.absent.get("parcels", "no file in the folder holds EGiB parcels")
    msg = (
        f"no parcels ({why}): put the powiat's EGiB parcels anywhere in the folder, "
        "zipped or not — the EGiB GML export (*.gml) or a GPKG/SHP/GeoJSON export with a "
        "parcel ID column (ID_DZIALKI, as in egib/dzialki.gpkg)"
    )
    raise IngestError(load.raw_dir, msg, rule="parcels required")


def _add_app_gml(load: _Loading) -> None:
    """Plan zones of the APP GML files (an act without zones is listed, not read)."""
    files = load.of("app-gml")
    if not files:
        return
    zones, q_app, empty = _merge_app_zones(
        load.layers.get("plan_zones"), [f.path for f in files], load.stats
    )
    for rf in files:
        if rf.path in empty:
            rf.skip("an act without StrefaPlanistyczna zones")
    files = [f for f in files if f.path not in empty]
    if not files:
        return
    load.layers["plan_zones"] = zones
    load.quarantine.append(q_app)
    load.absent.pop("plan_zones", None)
    load.gml_read("plan_zones", files, "plan_zones (APP GML)")


def _add_gesut_gml(load: _Loading) -> None:
    """Utility lines of the GESUT GML files, kept to the region's powiaty."""
    files = load.of("gesut-gml")
    if not files:
        return
    lines, q_gesut = _merge_gesut_lines(
        load.layers.get("utilities"),
        load.layers.get("gminy"),
        [f.path for f in files],
        load.stats,
        load.notes,
    )
    load.layers["utilities"] = lines
    load.quarantine.append(q_gesut)
    if len(lines):
        load.absent.pop("utilities", None)
    load.gml_read("utilities", files, "utilities (GESUT GML)")


# layers an OpenStreetMap extract can give, used only where no other file gives them
OSM_LAYERS = ("roads", "rail", "junctions", "stations", "airports")


def _add_osm(load: _Loading) -> list[str]:
    """Roads, rail, stations, junctions and airports from OpenStreetMap extracts, for
    the layers no official file in the folder gives; each one a line of the summary."""
    files = load.of("osm")
    missing = [k for k in OSM_LAYERS if not len(load.layers.get(k, ()))]
    if not files:
        return []
    if not missing:
        for rf in files:
            rf.skip("the folder's official layers give everything it holds")
        return []
    got: dict[str, list[gpd.GeoDataFrame]] = {}
    for rf in files:
        for r in read_osm(rf.path):
            use = r.key in missing
            rf.add(r.key if use else "", r.layer, r.read, r.kept if use else 0, r.crs_in)
            if use:
                got.setdefault(r.key, []).append(r.frame)
                load.sources.setdefault(r.key, []).append(rf.name)
                load.dates.setdefault(r.key, rf.date)
    for key, frames in got.items():
        layer = _concat(frames)
        what = load.absent.get(key) or "no official layer"
        load.notes.append(
            f"{key} from OpenStreetMap ({load.where()[key]}): {len(layer):,} features, "
            f"because the folder's official data gives none ({what})"
        )
        load.layers[key] = layer
        load.absent.pop(key, None)
    return list(got)


def _read_dem(load: _Loading, scratch: Path) -> None:
    """The terrain model: one raster, or several sheets of one CRS made one; a raster
    that cannot be used is left out with the reason."""
    files = load.of("nmt")
    if not files:
        return
    try:
        paths = [_check_raster(_with_crs(f.path, scratch, load.notes)) for f in files]
        paths = [p for p in paths if _meets_window(p)] or paths[:1]
        dem = paths[0] if len(paths) == 1 else _mosaic(paths, scratch / "nmt_mosaic.tif")
    except IngestError as exc:
        names = {str(f.path): f.name for f in files}
        load.absent["dem"] = f"{names.get(exc.file, exc.file)}: {exc.problem}: left out"
        for f in files:
            f.skip(exc.problem)
        return
    parcels = load.layers["parcels"]
    if why := raster_far_from_parcels(dem, parcels, ", ".join(f.name for f in files)):
        load.absent["dem"] = why
        return
    load.dem_path = dem
    load.dates.setdefault("dem", max(f.date for f in files))
    for f in files:
        f.add("dem", "", 1, 1)
    load.sources["dem"] = [f.name for f in files]


def _meets_window(path: Path) -> bool:
    """Whether a raster's extent meets the window reads are limited to (always, without
    one): a partition mosaics only the sheets around it."""
    with window.layer("dem"):
        bounds = window.current()
    if bounds is None:
        return True
    with rasterio.open(path) as src:
        left, bottom, right, top = rasterio.warp.transform_bounds(src.crs, WORK_CRS, *src.bounds)
    return left <= bounds[2] and right >= bounds[0] and bottom <= bounds[3] and top >= bounds[1]


def _mosaic(paths: list[Path], out: Path) -> Path:
    """NMT sheets (ASC, GeoTIFF or XYZ tiles of one CRS) written as one GeoTIFF."""
    from rasterio.merge import merge

    sources = [rasterio.open(p) for p in paths]
    try:
        crs = {str(s.crs) for s in sources}
        if len(crs) > 1:
            msg = f"NMT sheets in {len(crs)} different CRS ({', '.join(sorted(crs))})"
            raise IngestError(paths[0], msg, rule="one CRS per terrain model")
        heights, transform = merge(sources)
        profile = sources[0].profile
    finally:
        for s in sources:
            s.close()
    profile.update(
        driver="GTiff", height=heights.shape[1], width=heights.shape[2], transform=transform,
        count=heights.shape[0], compress="deflate",
    )  # fmt: skip
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(heights)
    return out


# what puts each layer in the folder, for the summary when no file gives it
DOWNLOAD_HINT = {
    "gminy": "PRG boundaries (A03_Granice_gmin)",
    "zoning": "the gmina's MPZP designations (vector layer)",
    "plan_zones": "the gmina's plan ogólny (APP GML)",
    "roads": "BDOT10k (OT_SKDR_L) or an OpenStreetMap extract",
    "rail": "BDOT10k (OT_SKTR_L) or an OpenStreetMap extract",
    "natura2000": "BDOT10k (OT_TCON_A)",
    "forest": "BDOT10k (OT_PTLZ_A)",
    "water": "BDOT10k (OT_PTWP_A)",
    "power_lines": "BDOT10k (OT_SULN_L)",
    "junctions": "a junction layer, BDOT10k roads or an OpenStreetMap extract",
    "stations": "a station layer, BDOT10k (OT_KUKO_A, OT_OIKM_P) or OpenStreetMap",
    "airports": "an airport layer, BDOT10k (OT_KUKO_A) or OpenStreetMap",
    "utilities": "the powiat's GESUT export",
    "substations": "the powiat's GESUT devices",
    "flood": "ISOK flood hazard zones (Q1%)",
    "dem": "NMT (ASC, GeoTIFF or XYZ)",
    "population": "GUS census 2021 population in the 1 km grid (GRID_NSP2021_RES)",
    "buildings": "BDOT10k (OT_BUBD_A) or EGiB buildings (EGB_Budynek)",
    "land_use": "EGiB land-use contours (EGB_KonturUzytkuGruntowego)",
    "soil_classes": "EGiB soil-class contours (EGB_KonturKlasyfikacyjny)",
}


def _name_absent(load: _Loading) -> None:
    """A reason for every layer no file gives."""
    for spec in RAW_LAYERS:
        key = spec.key
        if key in load.absent or load.layers.get(key) is not None or key == "parcels":
            continue
        if not load.wants(key):  # not looked for
            continue
        if key == "dem" and load.dem_path is not None:
            continue
        load.absent[key] = f"no file in the folder holds it (add {DOWNLOAD_HINT[key]})"


def _name_unused(load: _Loading) -> None:
    """Why each file the run does not use is not used, and one line of the summary."""
    if load.wanted is not None:  # a partial read: a file may hold what others read
        return
    unused = [rf for rf in load.files if not rf.used]
    for rf in unused:
        rf.skip("no feature of a layer the tool uses")
    if unused:
        shown = "; ".join(f"{rf.name}: {rf.why}" for rf in unused[:UNUSED_SHOWN])
        more = f"; and {len(unused) - UNUSED_SHOWN} more" if len(unused) > UNUSED_SHOWN else ""
        load.notes.append(
            f"{len(unused)} file(s) of the folder not used (run_info 'files' says what each "
            f"file became): {shown}{more}"
        )


UNUSED_SHOWN = 5  # files named in the summary line; run_info['files'] names them all
MAIN_ROAD_CLASSES = ("A", "S", "GP", "G")  # the ``roads_main`` reference layer


def _derive_junctions(load: _Loading) -> None:
    """Motorway junctions, when no file gives them, from the road topology
    (:func:`~omw_sites.etl.derive.junctions_from_roads`); one line of the summary."""
    layers, absent, dates = load.layers, load.absent, load.dates
    if len(layers.get("junctions", ())) or not len(layers.get("roads", ())):
        return
    derived = junctions_from_roads(layers["roads"])
    if not len(derived):
        return
    why = absent.pop("junctions", None) or "no file in the folder holds it"
    layers["junctions"] = derived
    load.notes.append(
        f"junctions derived from the road network ({why}): "
        f"{len(derived)} points where a motorway or expressway meets a lower-class road"
    )
    if "roads" in dates:
        dates["junctions"] = dates["roads"]


def _derive_from_bdot(load: _Loading) -> None:
    """Stations and airports, when no file gives them, from BDOT10k's transport
    complexes (:mod:`omw_sites.etl.derive`); each derivation one line of the summary."""
    layers, absent, dates = load.layers, load.absent, load.dates
    complexes, points = layers.pop("bdot_complexes", None), layers.pop("bdot_points", None)
    derive_date = dates.pop("bdot_complexes", None) or dates.pop("bdot_points", "")
    for key, derived, source in (
        (
            "stations",
            stations_from_bdot(complexes, points),
            "BDOT10k rail station complexes and stops (OT_KUKO_A, OT_OIKM_P); "
            "no rail freight terminals",
        ),
        (
            "airports",
            airports_from_bdot(complexes),
            f"BDOT10k airport complexes of {MIN_AIRPORT_HA:g} ha or more (OT_KUKO_A)",
        ),
    ):
        if not len(layers.get(key, ())) and len(derived):
            why = absent.pop(key, None) or "no file in the folder holds it"
            layers[key] = derived
            load.notes.append(f"{key} derived from {source} ({why}): {len(derived)}")
            dates[key] = derive_date


def _transport(load: _Loading) -> None:
    """What the official files do not give of the transport layers: stations and
    airports derived from BDOT10k, junctions from the official roads, then OpenStreetMap
    for what is still missing (checked against the parcels like any layer), then
    junctions from OSM's roads."""
    _derive_from_bdot(load)
    _derive_junctions(load)
    added = _add_osm(load)
    if not added:
        return
    osm = {"parcels": load.layers.get("parcels"), **{k: load.layers[k] for k in added}}
    if osm["parcels"] is not None and not window.limited():
        check_near_parcels(osm, load.absent, load.notes, where=load.where())
    load.layers.update({k: v for k, v in osm.items() if k != "parcels"})
    if "roads" in added:
        roads = load.layers["roads"]
        load.layers["roads_main"] = roads[roads["road_class"].isin(MAIN_ROAD_CLASSES)].copy()
    _derive_junctions(load)


def _merge_gml_parcels(
    parcels: gpd.GeoDataFrame | None,
    files: list[Path],
    stats: dict[str, dict[str, int]],
    side_tables: list[Path] = (),  # type: ignore[assignment]
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Parcels with the registration units of the EGiB GML ``files`` taken from the GML.

    The GPKG's parcels of a unit (WWPPGG_R) that a GML export covers are replaced by the
    GML's current versions; ``source`` says where each parcel came from. Without a GPKG
    the GML's parcels are the layer. Where the GML does not resolve a parcel's ownership
    (no JRG links), the ownership side tables (``side_tables``) give it.
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
    for side_table in side_tables:
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
) -> tuple[gpd.GeoDataFrame | None, pd.DataFrame, set[Path]]:
    """Plan ogólny zones with the gminy of the APP GML ``files`` taken from the GML; the
    files without zones (an act alone) are returned apart."""
    frames, qs, empty = [], [], set()
    columns = ["symbol", "designation", "name", "teryt", "in_force_from", *PARAMETERS.values()]
    for path in files:
        data = read_app(path)
        frame = data.zones.frame
        if not len(frame):
            empty.add(path)
            continue
        frames.append(frame[[*columns, "geometry"]].assign(source=data.zones.source_format))
        qs.append(data.zones.quarantine)
        stats[path.name] = {
            "read": data.zones.read,
            "kept": len(frame),
            "repaired": data.zones.repaired,
            "quarantined": len(data.zones.quarantine),
        }
    if not frames:
        return zones, _empty_q(), empty
    app = pd.concat(frames, ignore_index=True)
    parts = [app]
    if zones is not None:
        parts.insert(0, zones[~zones["teryt"].isin(set(app["teryt"]))].assign(source="gpkg"))
    merged = pd.concat(parts, ignore_index=True)
    out = gpd.GeoDataFrame(merged, geometry="geometry", crs=WORK_CRS)
    return out, pd.concat(qs, ignore_index=True), empty


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


# what a partitioned run's worker has read of the layers a window never limits
# (``window.WHOLE_LAYERS``): the same for each of its partitions, so read once
_WHOLE_READS: dict[tuple[str, str, str, int, int], tuple] = {}


def _read_whole_once(path: Path, spec: RawLayer):
    """:func:`read_raw_layer`, kept for the process's next partitions when the read is a
    partition's (limited to a window) but the layer is read whole; a copy each time."""
    if not window.limited() or window.current() is not None:
        return read_raw_layer(path, spec)
    st = path.stat()
    key = (str(path), spec.layer or "", spec.key, st.st_mtime_ns, st.st_size)
    if key not in _WHOLE_READS:
        _WHOLE_READS[key] = read_raw_layer(path, spec)
    mapped, q1, q2, n_read, repaired = _WHOLE_READS[key]
    return mapped.copy(), q1.copy(), q2.copy(), n_read, repaired


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
    frame = read_vector_file(path, spec.layer, required=spec.columns).frame
    if spec.key in BDOT_LAYER_KEYS:  # SHP names cut to 10 characters (katZarzadz)
        frame = frame.rename(columns=expand_columns(list(frame.columns)))
    return frame


def _with_crs(path: Path, scratch: Path, notes: list[str]) -> Path:
    """An XYZ grid as a GeoTIFF with its CRS (XYZ carries none: from a ``.prj`` beside
    it, else from its coordinates, said in the summary); other rasters as they are."""
    if path.suffix.lower() != ".xyz":
        return path
    try:
        with rasterio.open(path) as src:
            crs = src.crs.to_wkt() if src.crs else xyz_crs(path, tuple(src.bounds))
            if crs is None:
                msg = "XYZ grid with no CRS: add a .prj next to it"
                raise IngestError(path, msg, rule="layer has a CRS")
            if not src.crs and not path.with_suffix(".prj").exists():
                notes.append(f"{path.name}: an XYZ grid has no CRS; {crs} from its coordinates")
            profile = {**src.profile, "driver": "GTiff", "crs": crs, "compress": "deflate"}
            out = scratch / f"{path.stem}.{abs(hash(str(path)))}.tif"
            with rasterio.open(out, "w", **profile) as dst:
                dst.write(src.read())
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(path, f"cannot read the XYZ grid: {exc}") from exc
    return out


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
    groups = _col(gdf, "GRUPA_REJESTROWA")  # the side tables override it (_apply_ownership)
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
            **{k: v.to_numpy() for k, v in plan_parameters(gdf).items()},
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
    # the four APP 2.0 parameters (maksWysokoscZabudowy …), decimal commas allowed
    for tag, col in PARAMETERS.items():
        cols[col] = to_number(_col(gdf, tag.upper()))
    return _frame(gdf, {k: v.to_numpy() for k, v in cols.items()}), _empty_q()


def _roads(gdf, path, spec):
    cols = {
        "road_class": gdf["KLASADROGI"].astype(str).str.strip().str.upper(),
        "management": _col(gdf, "KATZARZADZANIA", "").astype(str),
        "number": _col(gdf, "NUMERDROGI", "").fillna("").astype(str),
        "width_m": road_width(gdf),  # carriageway width
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


def _population(gdf, path, spec):
    """The census grid: residents and working-age (15–64) residents per 1 km cell; a
    blank (statistical secrecy) is NaN, not 0."""
    cols = {
        "code": _col(gdf, "CODE", "").fillna("").astype(str).to_numpy(),
        "residents": to_number(gdf["RES"]).to_numpy(),
        "working_age": to_number(_col(gdf, "RES_15_64")).to_numpy(),
    }
    return _frame(gdf, cols), _empty_q()


def _land_use(gdf, path, spec):
    ofu = gdf["OFU"].fillna("").astype(str).str.strip()
    return _frame(gdf, {"ofu": ofu.to_numpy()}), _empty_q()


def _soil_classes(gdf, path, spec):
    cols = {
        "ozu": _col(gdf, "OZU", "").fillna("").astype(str).str.strip().to_numpy(),
        "ozk": gdf["OZK"].fillna("").astype(str).str.strip().str.upper().to_numpy(),
    }
    return _frame(gdf, cols), _empty_q()


def _buildings(gdf, path, spec):
    return _frame(gdf, {}), _empty_q()


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
    "population": _population,
    "land_use": _land_use,
    "soil_classes": _soil_classes,
    "buildings": _buildings,
}
