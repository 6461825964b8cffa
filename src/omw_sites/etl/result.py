"""What a reader returns: one canonical layer, its quarantine and the counts for the report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

QUARANTINE_COLUMNS = ["file", "layer", "record", "rule", "detail", "attributes"]


@dataclass
class LayerResult:
    """A canonical layer read from one source file.

    Attributes
    ----------
    key : canonical layer name (``parcels``, ``plan_zones``, ``roads``, ``utilities`` …)
    frame : the accepted records, EPSG:2180
    quarantine : refused records: file, layer, record, rule, detail, attributes (JSON)
    source_format : detected format (``egib-gml-2021``, ``app-gml-2.0``, ``shp`` …)
    layer : the layer / feature type inside the file
    crs_in : CRS the file was written in (``EPSG:2177``)
    read : records read before validation
    repaired : records whose geometry was repaired
    """

    key: str
    frame: gpd.GeoDataFrame
    quarantine: pd.DataFrame
    source_format: str
    layer: str
    crs_in: str
    read: int
    repaired: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def kept(self) -> int:
        return len(self.frame)

    def quarantined_by_reason(self) -> dict[str, int]:
        """Count of quarantined records per rule."""
        if not len(self.quarantine):
            return {}
        return {str(k): int(v) for k, v in self.quarantine["rule"].value_counts().items()}


def quarantine_rows(
    file: object,
    layer: str | None,
    records: pd.Series | np.ndarray | list,
    rule: str,
    detail: str | pd.Series | np.ndarray,
    attributes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Quarantine rows (empty frame when there are no records).

    ``attributes`` holds the original attributes of the same records; they are kept as
    one JSON object per row so the producer can see exactly what was refused.
    """
    records = np.asarray(records, dtype=object)
    if len(records) == 0:
        return pd.DataFrame(columns=QUARANTINE_COLUMNS)
    if attributes is not None and len(attributes):
        plain = attributes.drop(columns=[c for c in attributes if c == "geometry"], errors="ignore")
        attrs = [
            json.dumps({k: _plain(v) for k, v in row.items()}, ensure_ascii=False)
            for row in plain.to_dict("records")
        ]
    else:
        attrs = [""] * len(records)
    return pd.DataFrame(
        {
            "file": str(file),
            "layer": layer or "",
            "record": records.astype(str),
            "rule": rule,
            "detail": np.asarray(detail, dtype=object) if not isinstance(detail, str) else detail,
            "attributes": attrs,
        }
    )


def _plain(v: object) -> object:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, str | int | float | bool):
        return v
    if v is pd.NA or v is pd.NaT:
        return None
    return str(v)


def concat_quarantine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate quarantine frames, keeping the column set when all are empty."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=QUARANTINE_COLUMNS)
    return pd.concat(parts, ignore_index=True).reindex(columns=QUARANTINE_COLUMNS)
