"""Query parameters every route shares: unknown ones refused, and the ``f`` format."""

from __future__ import annotations

from typing import Any

from fastapi import Query
from starlette.requests import Request

from omw_sites.api.problems import ProblemError, bad_parameter


def check_params(request: Request, allowed: frozenset[str]) -> None:
    """OGC API Features: a query parameter the API does not define is a 400 naming it."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        names, takes = ", ".join(unknown), ", ".join(sorted(allowed)) or "no parameters"
        msg = f"unknown query parameter(s) {names}; this endpoint takes {takes}"
        raise ProblemError(
            400, msg, invalid_params=[{"name": n, "reason": "unknown"} for n in unknown]
        )


def check_format(f: str | None, allowed: tuple[str, ...] = ("json",)) -> str:
    """``f`` if it is one of ``allowed`` (the first when absent), else a 400."""
    if f is None:
        return allowed[0]
    if f not in allowed:
        raise bad_parameter("f", f"must be one of {', '.join(allowed)}, not {f!r}")
    return f


def format_query(*formats: str) -> Any:
    """The ``f`` query parameter: one of ``formats`` (the first is the default)."""
    names = ", ".join(formats)
    return Query(
        None,
        description=f"response format: {names}; without it the Accept header chooses "
        f"({formats[0]} for */*)",
        json_schema_extra={"enum": list(formats)},
    )
