"""RFC 7807 problem bodies for every error the API returns, FastAPI's own included.

``title`` and ``detail`` are in the request's language: ``?lang=``, then
``Accept-Language``; a request naming neither (GDAL, OWSLib, curl) gets English, the
language of the standards the API follows. A detail is a :class:`Text` (a catalogue
message id with its values), rendered when the response is sent, so that code raising a
problem need not know the request; a plain English text with no catalogue entry stays
as it is inside a translated frame ("niepoprawny parametr zapytania 'filter': …").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from omw_sites.i18n import format_number, gettext, negotiate, translations

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)

# JSON schema of a problem body, referenced from the OpenAPI document.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 7807 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "problem type URI (about:blank: see title)"},
        "title": {
            "type": "string",
            "description": "short summary: the HTTP status phrase, in the language asked for",
        },
        "status": {"type": "integer", "description": "HTTP status code"},
        "detail": {
            "type": "string",
            "description": "what went wrong and how to fix it (lang, then Accept-Language; "
            "English when neither names Polish)",
        },
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


@dataclass(frozen=True)
class Text:
    """A text in any language: a catalogue message id (English, with ``%(name)s``
    placeholders) and its values; values that are messages are rendered too, numbers
    in the language's format. ``str()`` is the English text."""

    msgid: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def render(self, lang: str) -> str:
        text = translations(lang).gettext(self.msgid)
        if not self.values:
            return text
        return text % {k: _value(v, lang) for k, v in self.values.items()}

    def __str__(self) -> str:
        return self.render("en")


def _value(value: Any, lang: str) -> Any:
    if isinstance(value, Text):
        return value.render(lang)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value, lang, 0 if isinstance(value, int) else 2)
    return value


def message(text: str | Text, /, **values: Any) -> Text:
    """``text`` as a :class:`Text` (a message as it is; values fill a message id)."""
    return text if isinstance(text, Text) else Text(text, values)


Reasons = list[dict[str, Any]]  # invalid-params: {"name": str, "reason": str | Text}


class ProblemError(Exception):
    """An error the API reports as a problem body with the given HTTP status.

    ``detail`` is a catalogue message id filled with ``values`` (or an English text);
    ``str(exc)`` and ``exc.detail`` are the English text."""

    def __init__(
        self,
        status: int,
        detail: str | Text,
        /,
        *,
        invalid_params: Reasons | None = None,
        headers: dict[str, str] | None = None,
        **values: Any,
    ) -> None:
        self.message = message(detail, **values)
        super().__init__(str(self.message))
        self.status = status
        self.detail = str(self.message)
        self.invalid_params = invalid_params
        self.headers = headers


def bad_parameter(name: str, reason: str | Text, /, **values: Any) -> ProblemError:
    """A 400 problem for one refused query parameter; ``reason`` is a message id filled
    with ``values`` (or an English text)."""
    why = message(reason, **values)
    return ProblemError(
        400,
        Text("invalid query parameter %(name)s: %(reason)s", {"name": repr(name), "reason": why}),
        invalid_params=[{"name": name, "reason": why}],
    )


def request_language(scope: Scope) -> str:
    """The language of a problem body: ``?lang=``, then ``Accept-Language``'s best
    supported language, else English (a client that names no language is a program)."""
    query = scope.get("query_string", b"").decode("latin-1")
    lang = next((v for k, v in parse_qsl(query) if k == "lang"), None)
    header = next(
        (v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"accept-language"), ""
    )
    # English with the least quality: chosen only when nothing else is
    return negotiate(lang, f"{header}, en;q=0.001")


def status_title(status: int) -> str:
    """The HTTP status phrase of ``status`` (the message id of a problem's title)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ProblemResponse(Response):
    """An ``application/problem+json`` response whose ``title``, ``detail`` and reasons are
    rendered, when it is sent, in the language the request asks for (or ``lang``)."""

    media_type = PROBLEM_MEDIA_TYPE

    def __init__(
        self,
        status: int,
        detail: str | Text,
        *,
        instance: str | None = None,
        invalid_params: Reasons | None = None,
        headers: dict[str, str] | None = None,
        lang: str | None = None,
    ) -> None:
        self.detail = message(detail)
        self.instance = instance
        self.invalid = invalid_params
        self.lang = lang
        self.given_headers = dict(headers or {})
        super().__init__(b"", status_code=status)
        self.localise(lang or "en")

    def body_in(self, lang: str) -> bytes:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": gettext(lang, status_title(self.status_code)),
            "status": self.status_code,
            "detail": self.detail.render(lang),
        }
        if self.instance is not None:
            body["instance"] = self.instance
        if self.invalid:
            body["invalid-params"] = [
                {**p, "reason": message(p.get("reason", "")).render(lang)} for p in self.invalid
            ]
        return orjson.dumps(body)

    def localise(self, lang: str) -> None:
        """Render the body in ``lang`` and set the headers to match."""
        self.body = self.body_in(lang)
        vary = [v.strip() for v in self.given_headers.get("Vary", "").split(",") if v.strip()]
        headers = {
            **self.given_headers,
            "Content-Language": lang,
            "Vary": ", ".join(dict.fromkeys([*vary, "Accept-Language"])),
        }
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.lang is None and scope.get("type") == "http":
            self.localise(request_language(scope))
        await super().__call__(scope, receive, send)


def problem_response(
    status: int,
    detail: str | Text,
    *,
    instance: str | None = None,
    invalid_params: Reasons | None = None,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> Response:
    """A ``application/problem+json`` response in the request's language; ``detail`` is a
    message id filled with ``values`` (or an English text)."""
    return ProblemResponse(
        status,
        message(detail, **values),
        instance=instance,
        invalid_params=invalid_params,
        headers=headers,
    )


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status,
        exc.message,
        instance=request.url.path,
        invalid_params=exc.invalid_params,
        headers=exc.headers,
    )


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    path = request.url.path
    if exc.status_code == 404 and exc.detail == HTTPStatus.NOT_FOUND.phrase:
        detail = Text(
            "no resource at %(path)s; the landing page / lists what there is", {"path": path}
        )
    elif exc.status_code == 405:
        detail = Text(
            "%(method)s is not allowed on %(path)s; only the sites' offer and status can be "
            "changed (PATCH /collections/sites/items/{id})",
            {"method": request.method, "path": path},
        )
    else:
        detail = Text(str(exc.detail))
    headers = dict(exc.headers) if exc.headers is not None else None
    return problem_response(exc.status_code, detail, instance=path, headers=headers)


# pydantic's errors of a query parameter that have Polish words (type -> message id with
# the error's context); pydantic's English message is the English text of each
VALIDATION_MESSAGES = {
    "int_parsing": "Input should be a valid integer, unable to parse string as an integer",
    "int_from_float": "Input should be a valid integer, got a number with a fractional part",
    "float_parsing": "Input should be a valid number, unable to parse string as a number",
    "greater_than_equal": "Input should be greater than or equal to %(ge)s",
    "less_than_equal": "Input should be less than or equal to %(le)s",
    "greater_than": "Input should be greater than %(gt)s",
    "less_than": "Input should be less than %(lt)s",
    "missing": "Field required",
}


def _validation_reason(err: Mapping[str, Any]) -> Text:
    msg = str(err.get("msg", "invalid value"))
    msgid = VALIDATION_MESSAGES.get(str(err.get("type", "")))
    context = dict(err.get("ctx") or {})
    if msgid is None or gettext("en", msgid, **context) != msg:
        return Text(msg)  # a message pydantic words otherwise: as it is
    return Text(msgid, context)


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    invalid: Reasons = []
    details: list[Text] = []
    in_query = False
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        in_query = in_query or (bool(loc) and loc[0] == "query")
        name = loc[-1] if loc else "request"
        reason = _validation_reason(err)
        invalid.append({"name": name, "reason": reason})
        details.append(
            Text("invalid parameter %(name)s: %(reason)s", {"name": repr(name), "reason": reason})
        )
    detail = Text(
        "; ".join(f"%(d{i})s" for i in range(len(details))) or "invalid request",
        {f"d{i}": d for i, d in enumerate(details)},
    )
    # OGC API Features: a bad query parameter is a 400, not FastAPI's 422
    status = 400 if in_query else 422
    return problem_response(status, detail, instance=request.url.path, invalid_params=invalid)


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
