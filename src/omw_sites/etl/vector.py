"""Reading GPKG / SHP / GeoJSON / GML layers with GDAL: CRS recognition, encoding, columns."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyogrio

from omw_sites.etl.crs import resolve_epsg
from omw_sites.etl.errors import IngestError
from omw_sites.etl.gml import DEFAULT_LIMITS, Limits, check_size

_FORMATS = {".gpkg": "gpkg", ".shp": "shp", ".geojson": "geojson", ".json": "geojson"}


def vector_format(path: Path) -> str:
    """Short format name from the suffix (``gpkg``, ``shp``, ``geojson``, else ``gdal``)."""
    return _FORMATS.get(path.suffix.lower(), "gdal")


def read_vector_file(
    path: str | Path,
    layer: str | None = None,
    crs: str | int | None = None,
    required: tuple[str, ...] = (),
    limits: Limits = DEFAULT_LIMITS,
    encoding: str | None = None,
) -> tuple[gpd.GeoDataFrame, str, str, str]:
    """Read one layer with GDAL into EPSG:2180 with upper-case column names.

    The CRS comes from the layer (GPKG SRS, ``.prj`` incl. ESRI ``ETRS_1989_UWPP_*``,
    GeoJSON = CRS84); a layer without one needs ``crs``. Text that is not valid in
    the file's encoding is an error, never silently replaced.

    Returns
    -------
    (frame, format, layer name, input CRS as ``EPSG:n``)
    """
    path = Path(path)
    check_size(path, limits)
    fmt = vector_format(path)
    try:
        names = [str(n) for n, _ in pyogrio.list_layers(path)]
    except Exception as exc:
        raise IngestError(path, f"cannot read the file: {exc}") from exc
    if layer is None:
        layer = names[0] if names else None
    elif layer not in names:
        msg = f"layer {layer!r} not found (the file has: {', '.join(names) or 'none'})"
        raise IngestError(path, msg, layer=layer, rule="required layers")
    if layer is None:
        raise IngestError(path, "the file holds no layer", rule="non-empty file")
    try:
        info = pyogrio.read_info(path, layer=layer)
        if info["features"] > limits.max_features:
            msg = f"{info['features']:,} features, beyond the limit of {limits.max_features:,}"
            raise IngestError(path, msg, layer=layer, rule="feature limit")
        gdf = pyogrio.read_dataframe(path, layer=layer, use_arrow=True, encoding=encoding)
    except IngestError:
        raise
    except UnicodeDecodeError as exc:
        msg = f"attribute text is not valid {encoding or 'UTF-8'}: {exc.reason} at byte {exc.start}"
        raise IngestError(path, msg, layer=layer, rule="text in the declared encoding") from exc
    except Exception as exc:  # GDAL's own errors: unreadable, truncated, wrong format
        text = str(exc)
        if "utf" in text.lower() or "decode" in text.lower() or "invalid" in text.lower():
            raise IngestError(
                path, f"attribute text is not valid UTF-8: {text}", layer=layer,
                rule="text in the declared encoding",
            ) from exc  # fmt: skip
        raise IngestError(path, f"cannot read the file: {exc}", layer=layer) from exc
    _check_text(gdf, path, layer)
    if gdf.crs is None:
        if crs is None:
            raise IngestError(
                path,
                "layer has no coordinate reference system; add a .prj / srsName / GPKG SRS "
                "or give --crs EPSG:n",
                layer=layer,
                rule="layer has a CRS",
            )
        gdf = gdf.set_crs(crs)
    epsg = resolve_epsg(gdf.crs)
    if epsg is None:
        msg = f"unrecognised CRS {gdf.crs.name!r}"
        raise IngestError(path, msg, layer=layer, rule="known CRS")
    gdf = gdf.rename(columns={c: c.upper() for c in gdf.columns if c != gdf.geometry.name})
    missing = [c for c in required if c.upper() not in gdf.columns]
    if missing:
        msg = f"missing required column(s) {', '.join(missing)}"
        raise IngestError(path, msg, layer=layer, rule="required columns")
    if gdf.crs.to_epsg() != epsg:
        gdf = gdf.set_crs(epsg, allow_override=True)
    crs_in = "OGC:CRS84" if epsg == 4326 and fmt == "geojson" else f"EPSG:{epsg}"
    return (gdf.to_crs(2180) if epsg != 2180 else gdf), fmt, layer, crs_in


def _check_text(gdf: gpd.GeoDataFrame, path: Path, layer: str) -> None:
    """Refuse text GDAL could only decode with replacement characters."""
    for col in gdf.columns:
        if gdf[col].dtype != object or col == gdf.geometry.name:
            continue
        s = gdf[col].dropna()
        s = s[s.map(lambda v: isinstance(v, str))]
        bad = s.str.contains("\ufffd", regex=False)
        if bad.any():
            i = bad.idxmax()
            msg = f"attribute {col!r} is not valid text in the file's encoding: {s[i]!r}"
            raise IngestError(
                path, msg, layer=layer, record=str(i), rule="text in the declared encoding"
            )
