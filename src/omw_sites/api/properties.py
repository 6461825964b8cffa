"""The properties of a collection as the API describes them: JSON Schema types, date
formats, units and descriptions (the queryables document, the OpenAPI document and the
vector tiles' field list all take them from here)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from starlette.requests import Request

from omw_sites.api.catalog import Snapshot
from omw_sites.api.served_layer import Layer
from omw_sites.layers import RECORD_COLUMNS, SITE_COLUMNS, SITES

TEMPORAL_PROPERTY = "updated_at"  # sites: when the inventory record last changed
# properties holding dates or instants as RFC 3339 text: their JSON schema "format"
TIME_UNITS = {"UTC": "date-time", "date": "date"}  # unit in SITE_COLUMNS / RECORD_COLUMNS
DATE_COLUMNS = frozenset({"zoning_adopted"})  # dates whose unit column is blank


def describe(column: str) -> tuple[str, str]:
    """(unit, description) of a site-table column."""
    if column in SITE_COLUMNS:
        return SITE_COLUMNS[column]
    if column in RECORD_COLUMNS:
        return RECORD_COLUMNS[column]
    for prefix, text in (
        ("score_", "score for profile {} (0..1, null when excluded)"),
        ("rank_", "rank for profile {} (1 = best, 0 = excluded)"),
        ("excluded_", "why the site is excluded for profile {} (empty when eligible)"),
    ):
        if column.startswith(prefix):
            return "", text.format(column[len(prefix) :])
    return "", ""


def time_format(layer: Layer, column: str) -> str | None:
    """``date-time`` or ``date`` for a property holding instants or dates, else None."""
    dtype = layer.table[column].dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "date-time"
    if layer.name != SITES or pd.api.types.is_numeric_dtype(dtype):
        return None
    if column in DATE_COLUMNS:
        return "date"
    return TIME_UNITS.get(describe(column)[0])


def _json_type(dtype: Any) -> dict[str, str]:
    if pd.api.types.is_bool_dtype(dtype):
        return {"type": "boolean"}
    if pd.api.types.is_integer_dtype(dtype):
        return {"type": "integer"}
    if pd.api.types.is_numeric_dtype(dtype):
        return {"type": "number"}
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return {"type": "string", "format": "date-time"}
    return {"type": "string"}


def property_schema(layer: Layer, column: str) -> dict[str, str]:
    """JSON schema type (and date format) of one property of ``layer``."""
    schema = _json_type(layer.table[column].dtype)
    fmt = time_format(layer, column)
    return {**schema, "format": fmt} if fmt else schema


def property_schemas(layer: Layer) -> dict[str, dict[str, str]]:
    """JSON schema type of each property of ``layer``."""
    return {c: property_schema(layer, c) for c in layer.columns}


def queryables_doc(request: Request, layer: Layer, snap: Snapshot) -> dict[str, Any]:
    """JSON Schema of the properties ``filter``, ``sortby`` and ``properties`` take."""
    units = snap.run_info.get("units") or {} if layer.name == SITES else {}
    types = layer.geometry_types
    kind = types[0].lower() if len(types) == 1 else "any"
    props: dict[str, Any] = {
        "geometry": {
            "title": "geometry",
            "description": f"{', '.join(types) or 'no'} geometries; S_INTERSECTS and friends",
            "format": f"geometry-{kind}",
            "x-ogc-role": "primary-geometry",
        }
    }
    for column in layer.columns:
        unit, description = describe(column) if layer.name == SITES else ("", "")
        unit = str(units.get(column) or unit)
        entry: dict[str, Any] = {"title": column, **property_schema(layer, column)}
        if unit in TIME_UNITS:  # a time zone or "date": said by the format, not a unit
            description += f" ({unit})" if unit == "UTC" else ""
            unit = ""
        if column == TEMPORAL_PROPERTY:
            description += "; the datetime parameter of the items filters on it"
            entry["x-ogc-role"] = "primary-instant"
        if description:
            entry["description"] = description + (f" [{unit}]" if unit else "")
        if unit:
            entry["x-ogc-unit"] = unit
        props[column] = entry
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": str(request.url_for("queryables", collectionId=layer.name)),
        "type": "object",
        "title": layer.title,
        "description": f"queryable properties of {layer.name}",
        "properties": props,
        "additionalProperties": False,
    }
