"""A raw folder cut into partitions by powiat: which powiaty, and where their parcels lie.

Only the parcels' IDs and extents are read (GDAL gives a layer's feature extents
without building geometries); a parcel belongs to the powiat of its ID (``WWPP`` of
``WWPPGG_R.…``). A partition then reads its powiat's window: the extent of its parcels
grown by a halo (:meth:`Partition.window`).
"""

from __future__ import annotations

import dataclasses
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
from pyproj import CRS, Transformer

from omw_sites.etl import IngestError
from omw_sites.etl.bdot import CLASS_LAYER
from omw_sites.etl.crs import extent_problem, resolve_epsg
from omw_sites.etl.detect import DERIVE_CLASSES, bdot_name_class, classify_layers, ingest_file
from omw_sites.etl.egib import ID_COLUMNS
from omw_sites.etl.ingest import VECTOR_FORMATS, LayerListing
from omw_sites.etl.raw_folder import RawFile, discover
from omw_sites.etl.window import Bounds, Window
from omw_sites.layers import WORK_CRS

POWIAT = "powiat"  # the only partitioning so far


@dataclass(frozen=True)
class Partition:
    """One powiat of a partitioned run."""

    key: str  # powiat TERYT (4 digits)
    bounds: Bounds  # extent of its parcels, EPSG:2180
    parcels: int  # parcel records with its code (before the ingest's checks)

    def window(self, halo_m: float) -> Bounds:
        """The part of the folder it reads: its parcels' extent grown by ``halo_m``."""
        x0, y0, x1, y1 = self.bounds
        return (x0 - halo_m, y0 - halo_m, x1 + halo_m, y1 + halo_m)


@dataclass(frozen=True)
class Plan:
    """The partitions of a folder, and the extent of each GML file in it."""

    partitions: list[Partition]
    # the folder's files with their formats, told once for every partition (None when
    # some come from a zip: each process unpacks those itself)
    files: list[RawFile] | None
    # GML file (as the folder lists it) -> (canonical layer it gives, extent, EPSG:2180):
    # GDAL cannot read a GML file within a window, so a partition skips the files whose
    # extent misses its window instead of reading every one whole
    gml_extents: dict[str, tuple[str, Bounds]]
    # vector file (as the folder lists it) -> its layers, each with its canonical key and
    # extent: a partition reads within its window only the layers that meet it, without
    # opening every file of a country to find nothing
    vector_layers: dict[str, list[LayerListing]] = dataclasses.field(default_factory=dict)


# the canonical layer whose window decides whether a partition reads a GML file
GML_KEYS = {"egib-gml": "parcels", "app-gml": "plan_zones", "gesut-gml": "utilities"}


@dataclass(frozen=True)
class FilePlan:
    """What the plan learns of one file: its parcels' extents per powiat, and its extent
    (a GML file) or its layers with their extents (a vector file)."""

    parcels: list[pd.DataFrame]
    gml: tuple[str, Bounds] | None = None
    layers: list[LayerListing] | None = None


def plan_partitions(raw_dir: str | Path, client: Any = None) -> Plan:
    """The powiaty of ``raw_dir``'s parcels, in code order, and its GML files' extents.

    With a Dask ``client`` the files are looked at by its workers, several at a time
    (a GML file is parsed whole for its extent and parcel IDs: a country has hundreds);
    a folder of zips is looked at here (its files are unpacked in this process).
    Raises :class:`IngestError` when the folder holds no parcels, naming it.
    """
    raw_dir = Path(raw_dir)
    frames = []
    extents: dict[str, tuple[str, Bounds]] = {}
    vectors: dict[str, list[LayerListing]] = {}
    with tempfile.TemporaryDirectory(prefix="omw-plan-") as scratch:
        found = discover([raw_dir], Path(scratch))
        for rf in found:
            if rf.broken and rf.error is not None:
                raise rf.error
        told = None
        if not any(rf.zipped for rf in found):  # (an error, kept in ``why``, is not copied)
            told = [dataclasses.replace(rf, layers=[], error=None) for rf in found]
        work = [rf for rf in found if not rf.why and (_is_gml(rf) or rf.format in VECTOR_FORMATS)]
        if client is None or told is None:
            plans = [file_plan(rf) for rf in work]
        else:
            run = uuid.uuid4().hex
            futures = [
                client.submit(file_plan, rf, key=f"omw-plan-{i}-{run}", pure=False)
                for i, rf in enumerate(work)
            ]
            plans = client.gather(futures)  # the first file that fails raises here
        for rf, fp in zip(work, plans, strict=True):
            frames += fp.parcels
            if fp.gml is not None:
                extents[rf.name] = fp.gml
            if fp.layers is not None:
                vectors[rf.name] = fp.layers
    if not frames:
        msg = "no parcels: a partitioned run needs EGiB parcels in the folder"
        raise IngestError(raw_dir, msg, rule="parcels required")
    ext = pd.concat(frames, ignore_index=True)
    ext = ext[ext["powiat"].str.fullmatch(r"\d{4}")]
    if not len(ext):
        msg = "no parcel ID starts with a powiat code (WWPP of WWPPGG_R.…)"
        raise IngestError(raw_dir, msg, rule="parcel IDs")
    g = ext.groupby("powiat", sort=True)
    agg = g.agg(x0=("x0", "min"), y0=("y0", "min"), x1=("x1", "max"), y1=("y1", "max"))
    n = g["n"].sum()
    parts = [Partition(str(k), (r.x0, r.y0, r.x1, r.y1), int(n[k])) for k, r in agg.iterrows()]
    return Plan(parts, told, extents, vectors)


def _is_gml(rf: RawFile) -> bool:
    return "gml" in rf.format and not rf.format.startswith("osm")


def file_plan(rf: RawFile) -> FilePlan:
    """What the plan needs of one file of the folder (run here or on a worker)."""
    if _is_gml(rf):
        results = ingest_file(rf.path, fmt=rf.format)
        bounds = [r.frame.total_bounds for r in results if len(r.frame)]
        gml = None
        if bounds:
            b = np.array(bounds)
            box = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
            gml = (_gml_key(rf.format, rf.name), box)
        parcels = []
        if rf.format.startswith("egib-gml"):
            frame = results[0].frame
            b = frame.geometry.bounds.to_numpy()
            parcels.append(_extents(frame["parcel_id"].astype(str).to_numpy(), b))
        return FilePlan(parcels, gml=gml)
    listing = []
    parcels = []
    for layer, key, why in classify_layers(rf.path):
        if key == "parcels":
            parcels.append(_vector_extents(rf.path, layer))
        listing.append((layer, key, why, _layer_extent(rf.path, layer, key)))
    return FilePlan(parcels, layers=listing)


def _gml_key(fmt: str, name: str) -> str:
    """The canonical layer a GML file of format ``fmt`` gives (BDOT10k: by its class)."""
    if fmt == "bdot10k-gml":
        cls = bdot_name_class(Path(name).name) or ""
        return CLASS_LAYER.get(cls) or DERIVE_CLASSES.get(cls) or "roads"
    return next((k for f, k in GML_KEYS.items() if fmt.startswith(f)), "parcels")


def files_outside(plan: Plan, win: Window) -> set[str]:
    """The GML files of ``plan`` that have nothing in the window ``win``."""
    out = set()
    for name, (key, (x0, y0, x1, y1)) in plan.gml_extents.items():
        b = win.bounds_for(key)
        if b is not None and (x0 > b[2] or x1 < b[0] or y0 > b[3] or y1 < b[1]):
            out.add(name)
    return out


def _layer_extent(path: Path, layer: str, key: str | None) -> Bounds | None:
    """A layer's extent in EPSG:2180 (None when unknown, empty or not used)."""
    if key is None:
        return None
    try:
        info = pyogrio.read_info(path, layer=layer, force_total_bounds=True)
    except Exception:  # the ingest reads it, and names what is wrong with it
        return None
    box, crs = info.get("total_bounds"), info.get("crs")
    if box is None or not crs or not info.get("features") or not np.isfinite(box).all():
        return None
    epsg = resolve_epsg(crs)
    if epsg is None or extent_problem(tuple(box), epsg):
        return None  # a CRS label the ingest mends or names: the partitions read it
    x0, y0, x1, y1 = _to_work_crs(crs, np.asarray(box, dtype=float).reshape(1, 4))[0]
    return (float(x0), float(y0), float(x1), float(y1))


def _to_work_crs(crs: str | None, boxes: np.ndarray) -> np.ndarray:
    """Boxes (n × 4: x0, y0, x1, y1) in ``crs`` as boxes in EPSG:2180 that hold them."""
    if not crs or CRS.from_user_input(crs).equals(CRS.from_user_input(WORK_CRS)):
        return boxes
    t = Transformer.from_crs(crs, WORK_CRS, always_xy=True)
    out = [t.transform_bounds(b[0], b[1], b[2], b[3], densify_pts=21) for b in boxes]
    return np.array(out, dtype=float).reshape(-1, 4)


def _vector_extents(path: Path, layer: str) -> pd.DataFrame:
    """Per powiat, the extent (EPSG:2180) of one vector layer's parcels."""
    info = pyogrio.read_info(path, layer=layer)
    upper = {str(f).upper(): str(f) for f in info["fields"]}
    id_col = next((upper[c] for c in ID_COLUMNS if c in upper), None)
    if id_col is None:
        msg = f"no parcel ID column (one of {', '.join(ID_COLUMNS)})"
        raise IngestError(path, msg, layer=layer, rule="required columns")
    ids = pyogrio.read_dataframe(path, layer=layer, columns=[id_col], read_geometry=False)
    fids, bounds = pyogrio.read_bounds(path, layer=layer)
    if len(fids) != len(ids):  # features without geometry: extents by feature ID
        got = pyogrio.read_dataframe(
            path, layer=layer, columns=[id_col], read_geometry=False, fid_as_index=True
        )
        ids = got.loc[fids]
    frame = _extents(ids[id_col].astype(str).to_numpy(), bounds.T)
    cols = ["x0", "y0", "x1", "y1"]
    frame[cols] = _to_work_crs(info.get("crs"), frame[cols].to_numpy(dtype=float))
    return frame


def _extents(ids: np.ndarray, bounds: np.ndarray) -> pd.DataFrame:
    """Per powiat of ``ids``: min/max of the features' ``bounds`` (n × 4) and a count."""
    frame = pd.DataFrame(bounds, columns=["x0", "y0", "x1", "y1"])
    frame["powiat"] = pd.Series(ids, dtype=str).str.strip().str[:4].to_numpy()
    frame = frame.dropna()
    g = frame.groupby("powiat", sort=False)
    out = g.agg(x0=("x0", "min"), y0=("y0", "min"), x1=("x1", "max"), y1=("y1", "max"))
    out["n"] = g.size()
    return out.reset_index()
