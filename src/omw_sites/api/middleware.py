"""HTTP-level middleware of the API: ``HEAD`` wherever ``GET`` is, and gzip for large bodies."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.gzip import GZipMiddleware, GZipResponder, IdentityResponder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

GZIP_MINIMUM_SIZE = 1024  # bytes: below this the gzip header and CPU outweigh the saving
# zlib level 3: GeoJSON pages shrink 5-6 times at well under half the CPU of level 6 (the
# server compresses every large page; a CPU-bound server answers fewer requests)
GZIP_LEVEL = 3


class HeadMiddleware:
    """Answer ``HEAD`` as the same ``GET`` would, without the body (RFC 9110 §9.3.2).

    The route runs as a GET, so the status and every header (ETag, Content-Type, the
    Content-Length of the body a GET gets, gzip included) are the GET's; only the body is
    dropped. A 405 for GET is a 405 for HEAD, with HEAD listed in ``Allow`` beside GET.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_head(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                allow = headers.get("allow")
                if allow is not None and "GET" in allow and "HEAD" not in allow:
                    headers["allow"] = f"{allow}, HEAD"
                message = {**message, "headers": headers.raw}
            elif message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the rest of a streamed body: dropped, the end still sent
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_head)


class _StrongETagExempt(IdentityResponder):
    """A responder that leaves alone responses carrying a strong ETag.

    A strong validator names one exact byte sequence (RFC 9110 §8.8.1): compressing the
    body would need another tag, and ``If-Match`` with the tag a client got (a write's
    precondition) would no longer match. Weak ETags (the collections and pages) stay valid
    across content codings, so those responses are compressed.
    """

    async def send_with_compression(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            etag = Headers(raw=message.get("headers", [])).get("etag", "")
            if etag and not etag.startswith("W/"):
                self.content_encoding_set = True  # as if encoded already: passed through
                await self.send(message)
                return
        await super().send_with_compression(message)


class _GZipResponder(_StrongETagExempt, GZipResponder):
    pass


class _IdentityResponder(_StrongETagExempt, IdentityResponder):
    pass


class CompressionMiddleware(GZipMiddleware):
    """Starlette's gzip for bodies of at least ``minimum_size`` bytes, when the client
    accepts it; responses with a strong ETag go out as they are."""

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int = GZIP_MINIMUM_SIZE,
        compresslevel: int = GZIP_LEVEL,
    ) -> None:
        super().__init__(app, minimum_size=minimum_size, compresslevel=compresslevel)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        responder: ASGIApp
        if "gzip" in headers.get("accept-encoding", ""):
            responder = _GZipResponder(
                self.app,
                self.minimum_size,
                compresslevel=self.compresslevel,
                thread_minimum_size=self.thread_minimum_size,
                exclude_content_types=self.exclude_content_types,
            )
        else:
            responder = _IdentityResponder(
                self.app, self.minimum_size, exclude_content_types=self.exclude_content_types
            )
        await responder(scope, receive, send)
