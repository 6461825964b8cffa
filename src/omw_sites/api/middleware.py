"""HTTP-level middleware of the API: ``HEAD`` wherever ``GET`` is, gzip for large bodies,
``Server-Timing``, and the public Host from a trusted proxy's ``X-Forwarded-Host``."""

from __future__ import annotations

import ipaddress
import time

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


class ServerTimingMiddleware:
    """Add ``Server-Timing: app;dur=<ms>``: time from request to response headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - start) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", b"app;dur=%.3f" % ms))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_timing)


class ForwardedHostMiddleware:
    """Use ``X-Forwarded-Host`` as the Host of requests from a trusted proxy.

    Links in responses are built from the request's Host header; a reverse proxy that
    does not pass the public Host on sends it as ``X-Forwarded-Host`` instead.
    ``trusted`` is like uvicorn's ``forwarded_allow_ips``: "*" or comma-separated
    addresses/networks.
    """

    def __init__(self, app: ASGIApp, trusted: str = "127.0.0.1") -> None:
        self.app = app
        items = [t.strip() for t in trusted.split(",") if t.strip()]
        self.any = "*" in items
        self.networks = [ipaddress.ip_network(t, strict=False) for t in items if t != "*"]

    def _trusts(self, scope: Scope) -> bool:
        if self.any:
            return True
        client = scope.get("client")
        if not client:
            return False
        try:
            addr = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(addr in net for net in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._trusts(scope):
            headers = scope["headers"]
            forwarded = [v for k, v in headers if k == b"x-forwarded-host"]
            if forwarded:
                host = forwarded[0].split(b",")[0].strip()
                if host:
                    headers = [(k, v) for k, v in headers if k != b"host"]
                    scope = {**scope, "headers": [*headers, (b"host", host)]}
        await self.app(scope, receive, send)
