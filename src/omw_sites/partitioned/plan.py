"""A raw folder cut into partitions by powiat: which powiaty, and where their parcels lie.

Only the parcels' IDs and extents are read (GDAL gives a layer's feature extents
without building geometries); a parcel belongs to the powiat of its ID (``WWPP`` of
``WWPPGG_R.…``). A partition then reads its powiat's window: the extent of its parcels
grown by a halo (:meth:`Partition.window`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
from pyproj import CRS, Transformer

from omw_sites.etl import IngestError
from omw_sites.etl.detect import classify_layers
from omw_sites.etl.egib import ID_COLUMNS, read_egib_gml
from omw_sites.etl.ingest import VECTOR_FORMATS
from omw_sites.etl.raw_folder import discover
from omw_sites.etl.window import Bounds
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


def plan_partitions(raw_dir: str | Path) -> list[Partition]:
    """The powiaty of ``raw_dir``'s parcels, in code order.

    Raises :class:`IngestError` when the folder holds no parcels, naming it.
    """
    raw_dir = Path(raw_dir)
    frames = []
    with tempfile.TemporaryDirectory(prefix="omw-plan-") as scratch:
        for rf in discover([raw_dir], Path(scratch)):
            if rf.broken and rf.error is not None:
                raise rf.error
            if rf.why:
                continue
            if rf.format.startswith("egib-gml"):
                frame = read_egib_gml(rf.path).frame
                b = frame.geometry.bounds.to_numpy()
                frames.append(_extents(frame["parcel_id"].astype(str).to_numpy(), b))
            elif rf.format in VECTOR_FORMATS:
                for layer, key, _ in classify_layers(rf.path):
                    if key == "parcels":
                        frames.append(_vector_extents(rf.path, layer))
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
    return [Partition(str(k), (r.x0, r.y0, r.x1, r.y1), int(n[k])) for k, r in agg.iterrows()]


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
    crs = info.get("crs")
    if crs and not CRS.from_user_input(crs).equals(CRS.from_user_input(WORK_CRS)):
        t = Transformer.from_crs(crs, WORK_CRS, always_xy=True)
        box = [
            t.transform_bounds(row[0], row[1], row[2], row[3], densify_pts=5)
            for row in frame[["x0", "y0", "x1", "y1"]].to_numpy()
        ]
        frame[["x0", "y0", "x1", "y1"]] = np.array(box).reshape(-1, 4)
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
