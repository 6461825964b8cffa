"""RFC 7807 problem bodies for every error the API returns, FastAPI's own included."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)

# JSON schema of a problem body, referenced from the OpenAPI document.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 7807 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "problem type URI (about:blank: see title)"},
        "title": {"type": "string", "description": "short summary (the HTTP status phrase)"},
        "status": {"type": "integer", "description": "HTTP status code"},
        "detail": {"type": "string", "description": "what went wrong and how to fix it"},
        "instance": {"type": "string", "description": "the request path"},
        "invalid-params": {
            "type": "array",
            "description": "the query parameters that were refused, with the reason",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}


class ProblemError(Exception):
    """An error the API reports as a problem body with the given HTTP status."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        invalid_params: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.invalid_params = invalid_params
        self.headers = headers


def bad_parameter(name: str, reason: str) -> ProblemError:
    """A 400 problem for one refused query parameter."""
    return ProblemError(
        400,
        f"invalid query parameter {name!r}: {reason}",
        invalid_params=[{"name": name, "reason": reason}],
    )


def problem_response(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    invalid_params: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A ``application/problem+json`` response."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    if invalid_params:
        body["invalid-params"] = invalid_params
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status,
        exc.detail,
        instance=request.url.path,
        invalid_params=exc.invalid_params,
        headers=exc.headers,
    )


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and exc.detail == HTTPStatus.NOT_FOUND.phrase:
        detail = f"no resource at {request.url.path}; the landing page / lists what there is"
    elif exc.status_code == 405:
        detail = (
            f"{request.method} is not allowed on {request.url.path}; only the sites' "
            "offer and status can be changed (PATCH /collections/sites/items/{id})"
        )
    else:
        detail = str(exc.detail)
    headers = dict(exc.headers) if exc.headers is not None else None
    return problem_response(exc.status_code, detail, instance=request.url.path, headers=headers)


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    invalid: list[dict[str, str]] = []
    in_query = False
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        in_query = in_query or (bool(loc) and loc[0] == "query")
        name = loc[-1] if loc else "request"
        invalid.append({"name": name, "reason": str(err.get("msg", "invalid value"))})
    detail = "; ".join(f"invalid parameter {p['name']!r}: {p['reason']}" for p in invalid)
    # OGC API Features: a bad query parameter is a 400, not FastAPI's 422
    status = 400 if in_query else 422
    return problem_response(
        status, detail or "invalid request", instance=request.url.path, invalid_params=invalid
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return problem_response(
        500, "internal error; the server log has the details", instance=request.url.path
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error response of ``app`` a problem body."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(Exception, _on_unexpected)
