"""One collection as the API holds it in memory: every feature serialised once per CRS as
bytes, an STRtree to select by box or filter, orders by profile rank; a page of items is
a join of byte fragments."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely

from omw_sites.api.output_crs import (
    COORD_DECIMALS,
    CRS84_URI,
    OUTPUT_CRS,
    STORAGE_CRS_URI,
    OutputCrs,
    to_crs_xy,
)
from omw_sites.layers import WEB_CRS, WORK_CRS

Box = tuple[float, float, float, float]
# where the properties of a serialised feature begin (its id and geometry cannot hold it)
TAIL_HEAD = b',"properties":'


@dataclass(frozen=True)
class CrsView:
    """The features of a layer in one output CRS: serialised features and a tree to filter on."""

    features: list[bytes]  # one complete GeoJSON Feature per row, in storage order
    tree: shapely.STRtree  # over the geometries in this CRS, (x, y) = (lon, lat) or (E, N)
    bounds: np.ndarray  # (n, 4) envelopes of those geometries (NaN when missing)

    @classmethod
    def build(cls, features: list[bytes], geoms: np.ndarray) -> CrsView:
        return cls(features, shapely.STRtree(geoms), shapely.bounds(geoms))

    def intersecting(self, box: Box) -> np.ndarray:
        """Rows whose geometry intersects ``box``, ascending.

        Envelopes inside the box need no exact test; only those across its edge get one.
        """
        region = shapely.box(*box)
        candidates = self.tree.query(region)  # envelope hits
        env = self.bounds[candidates]
        minx, miny, maxx, maxy = box
        inside = (env[:, 0] >= minx) & (env[:, 1] >= miny) & (env[:, 2] <= maxx)
        inside &= env[:, 3] <= maxy
        edge = candidates[~inside]
        shapely.prepare(region)
        edge = edge[shapely.intersects(region, self.tree.geometries[edge])]
        return np.sort(np.concatenate((candidates[inside], edge)))


@dataclass(frozen=True)
class Layer:
    """One collection held in memory, ready to answer item pages by joining byte fragments."""

    name: str
    title: str
    description: str
    columns: tuple[str, ...]
    geometry_types: tuple[str, ...]
    bbox: tuple[float, float, float, float] | None  # CRS84
    index: dict[str, int]  # feature id (as text) -> row
    heads: list[bytes]  # per row: '{"type":"Feature","id":…,"geometry":'
    storage_geometries: np.ndarray  # EPSG:2180 (easting, northing), for views built on demand
    views: dict[str, CrsView]  # CRS URI -> view; CRS84 built at load, others on first use
    orders: dict[str, np.ndarray] = field(default_factory=dict)  # profile -> rows, best first
    positions: dict[str, np.ndarray] = field(default_factory=dict)  # profile -> place in order
    table: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)  # lazy extras
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.heads)

    def tail(self, row: int) -> bytes:
        """The ``',"properties":{…}}'`` end of a row's feature. Kept only inside the CRS84
        feature (not beside it): a second copy of every row's properties would be a third
        of the server's memory."""
        feature = self.views[CRS84_URI].features[row]
        return feature[feature.find(TAIL_HEAD) :]

    def view(self, crs: str) -> CrsView:
        """The view in ``crs`` (CRS84 built at load, the other ``OUTPUT_CRS`` on first use)."""
        found = self.views.get(crs)
        if found is not None:
            return found
        if crs not in OUTPUT_CRS:
            msg = f"unsupported CRS {crs!r}; supported: {', '.join(OUTPUT_CRS)}"
            raise ValueError(msg)
        with self._lock:
            if crs not in self.views:
                self.views[crs] = _crs_view(self, OUTPUT_CRS[crs])
            return self.views[crs]

    def select(
        self, boxes: Sequence[Box] | None, box_crs: str, profile: str | None
    ) -> np.ndarray | None:
        """Rows intersecting any of ``boxes`` (in ``box_crs``), in profile or storage order.

        Returns None for "every row in storage order", so that the caller can slice the
        feature list directly.
        """
        if boxes is None:
            return self.orders[profile] if profile else None
        view = self.view(box_crs)
        hits = [view.intersecting(b) for b in boxes]
        rows = hits[0] if len(hits) == 1 else np.unique(np.concatenate(hits))
        if profile:
            rows = rows[np.argsort(self.positions[profile][rows], kind="stable")]
        return rows

    def query(
        self,
        boxes: Sequence[Box] | None,
        box_crs: str,
        profile: str | None,
        mask: np.ndarray | None = None,
        sortby: Sequence[tuple[str, bool]] = (),
    ) -> np.ndarray | None:
        """Rows matching ``boxes`` and ``mask``, in ``sortby`` order (column, descending).

        Ties keep the profile order (or storage order). None means every row in storage
        order, as from ``select``.
        """
        rows = self.select(boxes, box_crs, profile)
        if mask is None and not sortby:
            return rows
        if rows is None:
            rows = np.arange(len(self))
        if mask is not None:
            rows = rows[mask[rows]]
        if sortby:
            keys = []
            for column, descending in reversed(sortby):
                key = self.sort_key(column)[rows]
                keys.append(np.where(np.isnan(key), np.inf, -key if descending else key))
            rows = rows[np.lexsort(keys)]  # stable: ties keep the incoming order
        return rows

    def sort_key(self, column: str) -> np.ndarray:
        """Float sort key of a property (NaN where missing); text sorts by its dense rank."""
        cached = self.cache.get(("sort", column))
        if cached is not None:
            return cached
        series = self.table[column]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            key = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        else:
            try:
                codes, _ = pd.factorize(series, sort=True)
            except TypeError:  # mixed types: compare as text
                codes, _ = pd.factorize(series.astype("string"), sort=True)
            key = np.where(codes < 0, np.nan, codes.astype(float))
        self.cache[("sort", column)] = key
        return key

    def spatial_rows(self, geom: shapely.Geometry, predicate: str, crs: str) -> np.ndarray:
        """Rows whose geometry (in ``crs``) satisfies ``predicate(geom, feature)``."""
        return self.view(crs).tree.query(geom, predicate=predicate)

    def page(
        self,
        boxes: Sequence[Box] | None,
        profile: str | None,
        offset: int,
        limit: int,
        *,
        crs: str = CRS84_URI,
        box_crs: str = CRS84_URI,
        mask: np.ndarray | None = None,
        sortby: Sequence[tuple[str, bool]] = (),
        properties: Sequence[str] | None = None,
    ) -> tuple[int, list[bytes]]:
        """Number of matching features and the serialised features of one page in ``crs``.

        ``properties`` (a subset of the columns) re-serialises just the page's properties.
        """
        rows = self.query(boxes, box_crs, profile, mask, sortby)
        features = self.view(crs).features
        matched = len(features) if rows is None else len(rows)
        offset = min(offset, matched)  # any offset past the end is an empty page
        if rows is None:
            picked = np.arange(offset, min(offset + limit, matched))
            if properties is None:
                return matched, features[offset : offset + limit]
        else:
            picked = rows[offset : offset + limit]
            if properties is None:
                return matched, [features[i] for i in picked.tolist()]
        return matched, self.with_properties(features, picked, properties)

    def with_properties(
        self, features: list[bytes], rows: np.ndarray, properties: Sequence[str]
    ) -> list[bytes]:
        """The features at ``rows`` with only ``properties`` (geometry from the fragments)."""
        names = list(properties)
        columns = [self.table[c].take(rows).to_numpy().tolist() for c in names]
        records = (
            [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
            if names
            else [{}] * len(rows)
        )
        option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        out = []
        for row, rec in zip(rows.tolist(), records, strict=True):
            # the geometry part ends where the properties begin (found in the feature
            # itself: a write may replace the row's feature and fragment at any moment,
            # see Catalog.refresh_site); the id and geometry cannot hold this text
            feature = features[row]
            props = orjson.dumps(rec, default=json_default, option=option)
            out.append(b"%b%b%b}" % (feature[: feature.find(TAIL_HEAD)], TAIL_HEAD, props))
        return out

    def mercator(self) -> tuple[np.ndarray, shapely.STRtree]:
        """Geometries in Web Mercator (EPSG:3857) and their tree, for vector tiles."""
        found = self.cache.get("mercator")
        if found is None:
            with self._lock:
                found = self.cache.get("mercator")
                if found is None:
                    series = gpd.GeoSeries(self.storage_geometries, crs=WORK_CRS)
                    geoms = np.asarray(series.to_crs("EPSG:3857").array, dtype=object)
                    found = (geoms, shapely.STRtree(geoms))
                    self.cache["mercator"] = found
        return found


def json_default(value: Any) -> Any:
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)  # orjson itself writes NaN and ±inf as null


def _features(heads: list[bytes], geojson: np.ndarray, tails: list[bytes]) -> list[bytes]:
    return [
        b"%b%b%b" % (h, b"null" if g is None else g.encode(), t)
        for h, g, t in zip(heads, geojson.tolist(), tails, strict=True)
    ]


def _crs_view(layer: Layer, crs: OutputCrs) -> CrsView:
    """The layer in ``crs``: coordinates in its authority axis order, as OGC API Part 2 wants.

    The tree stays in (x, y) = (lon, lat) or (easting, northing); bbox and filter literals
    are turned into that order before they query it. EPSG:4326 shares the CRS84 tree.
    """
    lonlat = layer.views[CRS84_URI]
    tails = [layer.tail(r) for r in range(len(layer))]
    features, geoms = view_rows(
        crs, layer.heads, layer.storage_geometries, lonlat.tree.geometries, tails
    )
    if crs.code == "EPSG:4326":
        return CrsView(features, lonlat.tree, lonlat.bounds)  # the same (x, y): share the tree
    return CrsView.build(features, geoms)


def view_rows(
    crs: OutputCrs,
    heads: list[bytes],
    storage: np.ndarray,
    crs84: np.ndarray,
    tails: list[bytes],
) -> tuple[list[bytes], np.ndarray]:
    """Rows serialised in ``crs`` (heads, geometries in EPSG:2180 and in CRS84 as served,
    property tails) and their geometries in the (x, y) order the view's tree uses."""
    if crs.uri == CRS84_URI:
        return _features(heads, shapely.to_geojson(crs84), tails), crs84
    if crs.code == "EPSG:4326":
        geoms = crs84  # CRS84 is EPSG:4326 with (lon, lat) axes
    elif crs.uri == STORAGE_CRS_URI:
        geoms = storage
    else:
        geoms = to_crs_xy(storage, crs.uri)

    def written(c: np.ndarray) -> np.ndarray:
        return np.round(c[:, ::-1] if crs.swap else c, crs.decimals)

    geojson = shapely.to_geojson(shapely.transform(geoms, written))
    return _features(heads, geojson, tails), np.asarray(geoms, dtype=object)


def storage_geometries(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """The geometries of ``gdf`` in EPSG:2180, an empty one as None (GeoJSON: null)."""
    if gdf.crs is None:
        gdf = gdf.set_crs(WORK_CRS)
    elif gdf.crs.to_epsg() != 2180:
        gdf = gdf.to_crs(WORK_CRS)
    storage = np.array(gdf.geometry.array, dtype=object)  # a copy: nulled below
    storage[shapely.is_empty(storage)] = None
    return storage


def crs84_geometries(storage: np.ndarray) -> np.ndarray:
    """Geometries in EPSG:2180 as CRS84 serves them: rounded, exteriors counter-clockwise."""
    geoms = np.asarray(gpd.GeoSeries(storage, crs=WORK_CRS).to_crs(WEB_CRS).array, dtype=object)
    geoms = shapely.transform(geoms, lambda c: np.round(c, COORD_DECIMALS))
    return shapely.orient_polygons(geoms)  # RFC 7946: exteriors counter-clockwise


def feature_heads(ids: np.ndarray) -> list[bytes]:
    """The ``{"type":"Feature","id":…,"geometry":`` start of each feature."""
    return [
        b'{"type":"Feature","id":%b,"geometry":' % orjson.dumps(i, default=json_default)
        for i in ids.tolist()
    ]


def property_tails(props: pd.DataFrame) -> list[bytes]:
    """The ``,"properties":{…}}`` end of each row's feature."""
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    return [
        b',"properties":%b}' % orjson.dumps(rec, default=json_default, option=option)
        for rec in props.to_dict(orient="records")
    ]


def _bbox(crs84: np.ndarray) -> tuple[float, float, float, float] | None:
    valid = ~shapely.is_missing(crs84) & ~shapely.is_empty(crs84)
    if not valid.any():
        return None
    minx, miny, maxx, maxy = shapely.total_bounds(crs84[valid]).tolist()
    return (minx, miny, maxx, maxy)


def _geometry_types(storage: np.ndarray) -> tuple[str, ...]:
    present = storage[~shapely.is_missing(storage)]
    return tuple(sorted({str(t) for t in gpd.GeoSeries(present).geom_type.dropna().unique()}))


def with_rows(
    layer: Layer,
    source: np.ndarray,
    fresh: gpd.GeoDataFrame,
    fresh_ids: np.ndarray,
    table: pd.DataFrame,
) -> Layer:
    """``layer`` with its rows rearranged: row ``i`` of the result is ``layer``'s row
    ``source[i]`` when that is >= 0, else row ``-source[i] - 1`` of ``fresh`` (whose
    properties are ``table``'s at that row; ``table`` is the new layer's whole table).

    Kept rows share their serialised features with ``layer`` (no copy of the bytes);
    fresh rows are serialised in every CRS ``layer`` has a view in, as a load would, and
    every view gets a new tree. Lazily built extras start afresh."""
    at = np.flatnonzero(source < 0)
    kept = source >= 0
    storage = storage_geometries(fresh)
    fresh_crs84 = crs84_geometries(storage)
    heads_new = feature_heads(fresh_ids)
    tails_new = property_tails(table.iloc[at])
    old_heads = layer.heads
    order = source.tolist()
    heads = [old_heads[s] if s >= 0 else heads_new[-s - 1] for s in order]
    all_storage = np.empty(len(source), dtype=object)
    all_storage[kept] = layer.storage_geometries[source[kept]]
    all_storage[at] = storage
    views: dict[str, CrsView] = {}
    for uri in sorted(layer.views, key=lambda u: u != CRS84_URI):  # CRS84 first
        old = layer.views[uri]
        crs = OUTPUT_CRS[uri]
        new_features, new_geoms = view_rows(crs, heads_new, storage, fresh_crs84, tails_new)
        features = [old.features[s] if s >= 0 else new_features[-s - 1] for s in order]
        if uri != CRS84_URI and crs.code == "EPSG:4326":
            lonlat = views[CRS84_URI]
            views[uri] = CrsView(features, lonlat.tree, lonlat.bounds)
            continue
        geoms = np.empty(len(source), dtype=object)
        geoms[kept] = old.tree.geometries[source[kept]]
        geoms[at] = new_geoms
        views[uri] = CrsView.build(features, geoms)
    crs84 = views[CRS84_URI].tree.geometries
    return replace(
        layer,
        heads=heads,
        storage_geometries=all_storage,
        views=views,
        table=table,
        bbox=_bbox(np.asarray(crs84)),
        geometry_types=_geometry_types(all_storage),
        cache={},
        _lock=threading.Lock(),
    )


def build_layer(
    name: str, title: str, description: str, gdf: gpd.GeoDataFrame, ids: np.ndarray
) -> Layer:
    """Reproject to CRS84 and serialise every feature once, as bytes."""
    storage = storage_geometries(gdf)
    geoms = crs84_geometries(storage)
    props = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    heads = feature_heads(ids)
    # the properties live on only inside the features (Layer.tail)
    view = CrsView.build(_features(heads, shapely.to_geojson(geoms), property_tails(props)), geoms)
    types = tuple(sorted({str(t) for t in gdf.geometry.geom_type.dropna().unique()}))
    return Layer(
        name=name,
        title=title,
        description=description,
        columns=tuple(str(c) for c in props.columns),
        geometry_types=types,
        bbox=_bbox(geoms),
        index={str(i): row for row, i in enumerate(ids.tolist())},
        heads=heads,
        storage_geometries=storage,
        views={CRS84_URI: view},
        table=props.reset_index(drop=True),
    )
