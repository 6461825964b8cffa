"""What the routes answer with: media types, link relations, link objects, JSON responses,
and the error responses each route declares in the OpenAPI document."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import URL
from starlette.responses import Response

from omw_sites.api.problems import PROBLEM_MEDIA_TYPE

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
SCHEMA_JSON = "application/schema+json"
MVT = "application/vnd.mapbox-vector-tile"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
TILESETS_VECTOR_REL = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
TILING_SCHEME_REL = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
TILING_SCHEMES_REL = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"

# error responses as the routes declare them (``responses=`` of a route)
Responses = dict[int | str, dict[str, Any]]
PROBLEM: dict[str, Any] = {"description": "problem details", "content": {PROBLEM_MEDIA_TYPE: {}}}
BAD_REQUEST: Responses = {400: {**PROBLEM, "description": "a query parameter is invalid"}}
NOT_FOUND: Responses = {404: {**PROBLEM, "description": "no such collection or feature"}}
NOT_MODIFIED: Responses = {
    304: {"description": "not modified since the ETag / Last-Modified given"}
}
NOT_ACCEPTABLE: Responses = {
    406: {**PROBLEM, "description": "no format offered is acceptable (Accept header)"}
}
# a document served as JSON or HTML, with conditional GET
DOC_RESPONSES: Responses = {
    200: {"content": {JSON: {}, HTML: {}}},
    **NOT_MODIFIED,
    **BAD_REQUEST,
    **NOT_ACCEPTABLE,
}


def json_response(
    obj: Any,
    media_type: str = JSON,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        orjson.dumps(obj), status_code=status_code, media_type=media_type, headers=headers
    )


def as_format(url: URL | str, fmt: str) -> str:
    """``url`` with ``f=fmt`` (the other query parameters kept)."""
    return str(URL(str(url)).include_query_params(f=fmt))


def link(href: Any, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    out = {"href": str(href), "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def html_alternate(url: URL | str, what: str) -> dict[str, str]:
    """The ``alternate`` link to the HTML page of ``url``."""
    return link(as_format(url, "html"), "alternate", HTML, f"{what} as HTML")
