"""Bounds on the work one request can cause: body and query size, and CQL2 filter complexity.

The filter limits are enforced in ``api/cql.py`` before any parser sees the text (the time
limit by the evaluator, ``api/cql_evaluation.py``); the body and query limits by
``RequestLimitMiddleware`` before the application reads anything.
"""

from __future__ import annotations

import os

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omw_sites.api.problems import Text, problem_response
from omw_sites.config import Settings, get_settings

# ---------------------------------------------------------------- request size

# the default of Settings.max_body_bytes (the reason is given there)
MAX_BODY_BYTES: int = Settings.model_fields["max_body_bytes"].default
BODY_LIMIT_ENV = "OMW_MAX_BODY_BYTES"
# Longest query string: a filter at its length limit, percent-encoded (Polish letters take
# 6 bytes each), plus the other parameters. Proxies commonly cap a request line near 8-64 KiB.
MAX_QUERY_BYTES = 64 << 10

# ---------------------------------------------------------------- CQL2 filters

# Longest filter text, in characters. Long enough for an IN list of every TERYT code of the
# region or a polygon of a few hundred vertices; anything larger belongs in a bbox or a POST.
MAX_FILTER_CHARS = 8192
# Deepest nesting: parentheses, NOT and unary minus in cql2-text; operator nesting in
# cql2-json and in the parsed tree. The cql2 parser recurses natively per level (it crashes
# the process near 2,000 levels) and the evaluator recurses per level in Python.
MAX_FILTER_DEPTH = 32
# Most operators (comparisons, AND/OR/NOT, LIKE/IN/BETWEEN/IS, arithmetic, function calls):
# each one is a pass over every feature, so this bounds the evaluation work.
MAX_FILTER_TERMS = 256
# The cql2 text parser backtracks at every parenthesis that fails to parse, re-reading its
# content twice, so its work is about sum(2 ** parentheses around each character). This
# budget bounds that work to a fraction of a second, far below any legitimate filter's need.
MAX_FILTER_PARSE_COST = 1 << 17
# Longest LIKE pattern given as a literal, in characters.
MAX_LIKE_PATTERN = 256
# Evaluation stops with a 400 once it has run this long (checked between operators and
# every few thousand rows of a row-wise LIKE): the last resort on very large stores.
MAX_FILTER_SECONDS = 5.0


def body_limit_from_env() -> int:
    """The request-body limit in bytes: :attr:`omw_sites.config.Settings.max_body_bytes`
    (``OMW_MAX_BODY_BYTES``, default :data:`MAX_BODY_BYTES`)."""
    try:
        return get_settings().max_body_bytes
    except ValidationError as err:  # one line naming the variable, not pydantic's report
        if not any(e.get("loc", ())[:1] == ("max_body_bytes",) for e in err.errors()):
            raise
        raw = os.environ.get(BODY_LIMIT_ENV)
        msg = f"{BODY_LIMIT_ENV}={raw!r}: expected a positive number of bytes"
        raise ValueError(msg) from err


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the limit."""


class RequestLimitMiddleware:
    """Refuse a request body over ``max_body_bytes`` (413) and a query string over
    ``max_query_bytes`` (414), as problem+json, without reading or buffering the excess.

    A declared ``Content-Length`` over the limit is refused before the application runs.
    A chunked (or understated) body is counted as it streams: once past the limit,
    ``receive`` raises ``BodyTooLarge`` and whatever the application then sends is
    replaced by the 413. Both answers close the connection, so the rest of the body is
    never read.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_query_bytes: int = MAX_QUERY_BYTES,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_query = max_query_bytes

    def _too_large(self, got: Text) -> Text:
        return Text(
            "the request body is %(got)s; the limit is %(limit)s bytes "
            "(%(env)s or create_app(max_body_bytes=...) sets it)",
            {"got": got, "limit": self.max_body, "env": BODY_LIMIT_ENV},
        )

    async def _refuse(self, scope: Scope, send: Send, status: int, detail: Text) -> None:
        response = problem_response(
            status, detail, instance=scope.get("path"), headers={"Connection": "close"}
        )
        await response(scope, _no_receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if len(query) > self.max_query:
            detail = Text(
                "the query string is %(n)s bytes; the limit is %(limit)s",
                {"n": len(query), "limit": self.max_query},
            )
            await self._refuse(scope, send, 414, detail)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            got = Text("%(n)s bytes", {"n": declared})
            await self._refuse(scope, send, 413, self._too_large(got))
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the application's answer to the aborted body is replaced below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            got = Text(
                "over %(limit)s bytes (stopped reading at %(n)s)",
                {"limit": self.max_body, "n": received},
            )
            await self._refuse(scope, send, 413, self._too_large(got))


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
