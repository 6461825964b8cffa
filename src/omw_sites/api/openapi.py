"""OpenAPI document of the API, converted from FastAPI's 3.1 output to OpenAPI 3.0."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from omw_sites.api.problems import PROBLEM_MEDIA_TYPE, PROBLEM_SCHEMA

OPENAPI_VERSION = "3.0.3"
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
ITEMS_TEMPLATE = "/collections/{collectionId}/items"
# cql-text: the draft name GDAL's OAPIF client looks for before it sends filters to the server
FILTER_LANG_SCHEMA: dict[str, Any] = {
    "type": "string",
    "enum": ["cql2-text", "cql2-json", "cql-text"],
    "default": "cql2-text",
}
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")

BBOX_SCHEMA: dict[str, Any] = {
    "type": "array",
    "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}],
    "items": {"type": "number"},
    "description": "minx,miny,maxx,maxy (or minx,miny,minz,maxx,maxy,maxz) in the axis "
    "order of bbox-crs (CRS84 by default)",
}
FEATURE_COLLECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": {"type": "object"}},
        "links": {"type": "array", "items": {"type": "object"}},
        "numberMatched": {"type": "integer", "minimum": 0},
        "numberReturned": {"type": "integer", "minimum": 0},
        "timeStamp": {"type": "string", "format": "date-time"},
    },
}
FEATURE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "geometry", "properties"],
    "properties": {
        "type": {"type": "string", "enum": ["Feature"]},
        "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "geometry": {"type": "object", "nullable": True},
        "properties": {"type": "object", "nullable": True},
        "links": {"type": "array", "items": {"type": "object"}},
    },
}


# how a write (PUT, PATCH, DELETE on sites) sends its API key: either header
SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "the API key of a gmina (omw-sites apikey add) as a bearer token",
    },
    "apiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "the same API key in the X-API-Key header",
    },
}


def _combinators_to_30(out: dict[str, Any]) -> dict[str, Any]:
    """anyOf / oneOf / allOf / prefixItems converted, a null branch as ``nullable``."""
    for key in _SCHEMA_LISTS:
        if key in out:
            subs = [schema_to_30(s) for s in out.pop(key)]
            if any(s == {"type": "null"} for s in subs):
                subs = [s for s in subs if s != {"type": "null"}]
                out["nullable"] = True
            if key == "prefixItems":  # tuples: 3.0 has no positional items
                out.setdefault("items", {"anyOf": subs} if len(subs) > 1 else subs[0])
            elif len(subs) == 1 and key != "allOf":
                out = {**subs[0], **{k: v for k, v in out.items() if k != "type"}}
            elif subs:
                out[key] = subs
    return out


def _type_list_to_30(out: dict[str, Any]) -> None:
    """``"type": [..., "null"]`` as one type (or anyOf) plus ``nullable``."""
    listed = out.pop("type")
    types = [t for t in listed if t != "null"]
    if len(types) < len(listed):
        out["nullable"] = True
    if len(types) == 1:
        out["type"] = types[0]
    elif types:
        out["anyOf"] = [{"type": t} for t in types]


def _keywords_to_30(out: dict[str, Any]) -> None:
    """const, examples and numeric exclusive bounds in their 3.0 spelling."""
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "examples" in out:
        examples = out.pop("examples")
        if isinstance(examples, list) and examples:
            out.setdefault("example", examples[0])
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out[bound], bool):
            out[plain] = out.pop(bound)
            out[bound] = True


def schema_to_30(schema: Any) -> Any:
    """A JSON Schema (2020-12 flavour, as pydantic writes it) as an OpenAPI 3.0 schema."""
    if not isinstance(schema, dict):
        return schema
    out = _combinators_to_30(dict(schema))
    if isinstance(out.get("type"), list):
        _type_list_to_30(out)
    _keywords_to_30(out)
    if "properties" in out:
        out["properties"] = {k: schema_to_30(v) for k, v in out["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = schema_to_30(out[key])
    for key in ("$schema", "$id", "contentMediaType", "contentEncoding", "$defs"):
        out.pop(key, None)
    return out


def ogc_openapi(
    app: FastAPI, collections: Mapping[str, Mapping[str, dict[str, Any]]] | None = None
) -> dict[str, Any]:
    """FastAPI's document for ``app``, as OpenAPI 3.0 with problem bodies and OGC parameters.

    ``collections`` (id -> property -> JSON schema) get their own ``/collections/<id>/items``
    path too, with a query parameter per property (equality filter): GIS clients (GDAL's
    OAPIF driver) look up a collection's filter parameters under its concrete path.
    """
    doc = copy.deepcopy(
        get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
    )
    doc["openapi"] = OPENAPI_VERSION
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["FeatureCollectionGeoJSON"] = FEATURE_COLLECTION_SCHEMA
    schemas["FeatureGeoJSON"] = FEATURE_SCHEMA
    for name in list(schemas):
        schemas[name] = schema_to_30(schemas[name])
    if not schemas:
        del doc["components"]
    # the API keys of writes (each write operation lists them under "security")
    doc.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path, item in doc.get("paths", {}).items():
        for op in item.values():
            _operation_to_30(path, op)
    template = doc.get("paths", {}).get(ITEMS_TEMPLATE)
    if template is not None:
        for name, properties in (collections or {}).items():
            item = copy.deepcopy(template)
            for method, op in item.items():
                op["operationId"] = f"{op.get('operationId', 'items')}_{name}"
                params = [p for p in op.get("parameters", []) if p.get("name") != "collectionId"]
                taken = {p.get("name") for p in params}
                if method == "get":  # the equality filters are query parameters of GET only
                    params += [
                        {
                            "name": prop,
                            "in": "query",
                            "required": False,
                            "description": f"features whose {prop} equals this value",
                            "schema": schema,
                        }
                        for prop, schema in properties.items()
                        if prop not in taken
                    ]
                op["parameters"] = params
            concrete = ITEMS_TEMPLATE.replace("{collectionId}", name)
            # operations routed at the concrete path (POST on sites) are kept beside GET
            doc["paths"][concrete] = {**item, **doc["paths"].get(concrete, {})}
    return doc


def _operation_to_30(path: str, op: dict[str, Any]) -> None:
    has_query = False
    for param in op.get("parameters", []):
        has_query = has_query or param.get("in") == "query"
        param["schema"] = schema_to_30(param.get("schema", {}))
        param["schema"].pop("nullable", None)  # an absent parameter is how to say "none"
        if param["name"] == "bbox" and param["in"] == "query":
            param["schema"] = BBOX_SCHEMA
            param["style"] = "form"
            param["explode"] = False
        if param["name"] == "filter-lang" and param["in"] == "query":
            param["schema"] = FILTER_LANG_SCHEMA
    for media in op.get("requestBody", {}).get("content", {}).values():
        media["schema"] = schema_to_30(media.get("schema", {}))
    responses = op.setdefault("responses", {})
    if "requestBody" not in op:
        responses.pop("422", None)  # FastAPI's validation errors are 400 problem bodies here
    if has_query and "400" not in responses:
        responses["400"] = {"description": "a query parameter is invalid"}
    for code, response in responses.items():
        content = response.setdefault("content", {}) if code.startswith(("4", "5")) else None
        if content is not None:
            content.clear()
            content[PROBLEM_MEDIA_TYPE] = {"schema": _PROBLEM_REF}
        for media, body in response.get("content", {}).items():
            if media == "application/geo+json":
                single = path.endswith("{featureId}")
                ref = "FeatureGeoJSON" if single else "FeatureCollectionGeoJSON"
                body["schema"] = {"$ref": f"#/components/schemas/{ref}"}
            elif media == "application/vnd.mapbox-vector-tile":
                body["schema"] = {"type": "string", "format": "binary"}
            elif "schema" in body:
                body["schema"] = schema_to_30(body["schema"])
            else:
                body["schema"] = (
                    {"type": "string"} if media.startswith("text/") else {"type": "object"}
                )
