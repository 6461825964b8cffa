"""The body of a write (PATCH, PUT on a site): its media type and JSON, a merge patch or
a GeoJSON Feature, the offer and status fields it changes, and the check that a Feature
sent back leaves the pipeline's properties and geometry as stored; with the JSON Schemas
of these bodies for the OpenAPI document."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely
from starlette.requests import Request

from omw_sites.api.catalog import public_sites
from omw_sites.api.output_crs import CRS84_URI, OUTPUT_CRS, to_crs_xy
from omw_sites.api.problems import ProblemError
from omw_sites.api.responses import GEOJSON
from omw_sites.layers import WEB_CRS
from omw_sites.store.edits import EDITABLE, SiteEdit

CRS84 = CRS84_URI
# properties the server maintains: a body may carry them (a feature read and sent back),
# and they are ignored, whatever their value
SERVER_MAINTAINED = frozenset({"created_at", "updated_at", "measured_run", "scored_run"})
# how far a geometry sent back may be from the stored one and still count as the same
# (the served coordinates are rounded: 7 decimals of a degree, 1 cm)
GEOMETRY_TOLERANCE = {True: 1e-6, False: 0.05}  # degrees (geographic) / metres


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` inlined (OpenAPI request bodies)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


EDIT_SCHEMA = _inline_refs(SiteEdit.model_json_schema())
EDIT_SCHEMA["minProperties"] = 1
_OFFER_PROPERTIES = {k: v for k, v in EDIT_SCHEMA["properties"].items()}
# a site feature as PUT (and PATCH as a Feature) take it: the offer and status fields in
# properties; the other properties and the geometry may be sent back unchanged
FEATURE_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "properties"],
    "properties": {
        "type": {"type": "string", "enum": ["Feature"]},
        "id": {"type": "string", "description": "if given, the featureId of the URL"},
        "geometry": {
            "type": "object",
            "nullable": True,
            "description": "the stored geometry or null (the pipeline's: cannot be changed)",
        },
        "properties": {
            "type": "object",
            "properties": _OFFER_PROPERTIES,
            "additionalProperties": True,
            "description": "offer and status fields; any other property must hold its "
            "current value (measured attributes and scores are the pipeline's)",
        },
    },
}
# PUT: a replacement gives the status (the offer fields it leaves out are cleared)
REPLACE_BODY_SCHEMA: dict[str, Any] = {
    **FEATURE_BODY_SCHEMA,
    "properties": {
        **FEATURE_BODY_SCHEMA["properties"],
        "properties": {**FEATURE_BODY_SCHEMA["properties"]["properties"], "required": ["status"]},
    },
}


def site_feature(record: pd.Series) -> dict[str, Any]:
    """One site record as a GeoJSON feature (CRS84, published columns)."""
    frame = gpd.GeoDataFrame([record], geometry="geometry", crs="EPSG:2180")
    frame = public_sites(frame).to_crs(WEB_CRS)
    geom = frame.geometry.iloc[0]
    props = orjson.loads(frame.drop(columns="geometry").to_json(orient="records"))[0]
    return {
        "type": "Feature",
        "id": str(record["site_id"]),
        "geometry": orjson.loads(shapely.to_geojson(geom)),
        "properties": props,
    }


async def json_body(request: Request, media_types: Iterable[str]) -> Any:
    """The request's JSON body, if sent as one of ``media_types`` (else 415; bad JSON 422)."""
    allowed = tuple(media_types)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in allowed:
        raise ProblemError(415, f"send the body as {' or '.join(allowed)}, not {media or 'none'}")
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ProblemError(
            422,
            f"the body is not valid JSON: {exc}",
            invalid_params=[{"name": "body", "reason": "not JSON"}],
        ) from exc


def unprocessable(name: str, reason: str) -> ProblemError:
    return ProblemError(422, f"{name}: {reason}", invalid_params=[{"name": name, "reason": reason}])


def is_feature(body: Any, media: str) -> bool:
    """Whether a PATCH body is a GeoJSON Feature rather than a merge patch."""
    return isinstance(body, dict) and (media == GEOJSON or body.get("type") == "Feature")


def documents_value(value: Any) -> Any:
    """``documents`` as a feature carries them (the published JSON text) or as a list."""
    if isinstance(value, str):
        try:
            return orjson.loads(value) if value.strip() else None
        except orjson.JSONDecodeError:
            return value  # refused by the edit, naming the field
    return value


def offer_fields(properties: dict[str, Any]) -> dict[str, Any]:
    """The offer and status fields of a Feature's properties, as an edit takes them."""
    out = {k: v for k, v in properties.items() if k in EDITABLE}
    if "documents" in out:
        out["documents"] = documents_value(out["documents"])
    return out


def _same(a: Any, b: Any) -> bool:
    """Whether a property sent back equals the served one (numbers to 1e-9)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b and type(a) is type(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def content_crs(request: Request) -> str:
    """The CRS of the body's geometry: its ``Content-Crs`` header (CRS84 without one)."""
    text = request.headers.get("content-crs")
    if not text:
        return CRS84
    uri = text.strip().removeprefix("<").removesuffix(">").strip()
    if uri not in OUTPUT_CRS:
        msg = f"Content-Crs {text!r} is not supported; one of {', '.join(OUTPUT_CRS)}"
        raise ProblemError(400, msg, invalid_params=[{"name": "Content-Crs", "reason": msg}])
    return uri


def read_only_check(feature_id: str, body: dict[str, Any], crs: str) -> Callable[[pd.Series], None]:
    """A check of a Feature body against the record written: its id, geometry and every
    property that is not an offer or status field must be the stored ones (the
    pipeline's); a differing one is refused (422) by name."""
    properties = body.get("properties")
    if not isinstance(properties, dict):
        raise unprocessable("properties", "a Feature needs a properties object")
    geometry = body.get("geometry")
    shape = None
    if geometry is not None:
        try:
            shape = shapely.from_geojson(orjson.dumps(geometry))
        except Exception as exc:
            raise unprocessable("geometry", f"not a GeoJSON geometry: {exc}") from exc
    given = {
        k: v for k, v in properties.items() if k not in EDITABLE and k not in SERVER_MAINTAINED
    }

    def check(rec: pd.Series) -> None:
        if "id" in body and str(body["id"]) != feature_id:
            reason = f"the feature is {feature_id!r}, the body says {body['id']!r}"
            raise unprocessable("id", reason)
        served = site_feature(rec)["properties"]
        unknown = sorted(k for k in given if k not in served)
        if unknown:
            raise unprocessable(unknown[0], f"no such property of a site ({', '.join(unknown)})")
        differ = sorted(k for k, v in given.items() if not _same(v, served[k]))
        if shape is not None and not _same_shape(shape, rec["geometry"], crs):
            differ.insert(0, "geometry")
        if differ:
            reason = (
                "measured attributes, scores and the geometry are the pipeline's and cannot "
                f"be changed here; send them as served or leave them out ({', '.join(differ)})"
            )
            raise ProblemError(
                422,
                f"{', '.join(differ)}: {reason}",
                invalid_params=[
                    {"name": name, "reason": "differs from the stored value"} for name in differ
                ],
            )

    return check


def _same_shape(shape: shapely.Geometry, stored: shapely.Geometry, crs: str) -> bool:
    """Whether ``shape`` (in ``crs``'s axis order) is the stored geometry as served."""
    out = OUTPUT_CRS[crs]
    geoms = to_crs_xy(np.array([stored], dtype=object), crs)
    if out.swap:
        geoms = shapely.transform(geoms, lambda c: c[:, ::-1])
    if shapely.get_type_id(shape) != shapely.get_type_id(geoms[0]):
        # a Polygon sent for a one-part MultiPolygon is the same land
        shape = shapely.multipolygons([shape]) if shapely.get_type_id(shape) == 3 else shape
    tolerance = GEOMETRY_TOLERANCE[out.geographic]
    return bool(shapely.hausdorff_distance(shape, geoms[0]) <= tolerance)
