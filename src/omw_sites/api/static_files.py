"""The pages' own scripts and styles (MapLibre GL JS among them), served from the
package so that pages work offline, gzip-compressed for clients that accept it.

Starlette's static files carry a strong ETag, which the server's gzip middleware rightly
leaves alone (a strong tag names one exact byte sequence). So the compressed variant is
made here, once per file version, at the highest level (it is reused for every visitor),
with its own strong tag: MapLibre's 1 MB script travels as about a quarter of that.
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

MINIMUM_SIZE = 1024  # bytes: smaller files gain less than the gzip header costs
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")


@lru_cache(maxsize=64)
def _gzipped(path: str, mtime_ns: int, size: int) -> bytes:
    """The file at ``path`` compressed (cached per path, modification time and size)."""
    return gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0)


def _accepts_gzip(headers: Headers) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (``gzip`` or ``*`` with a quality above 0)."""
    for part in headers.get("accept-encoding", "").split(","):
        coding, *params = (f.strip() for f in part.split(";"))
        if coding.lower() not in ("gzip", "*"):
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


class StaticAssets(StaticFiles):
    """``StaticFiles`` with a gzip variant of text files (``Vary: Accept-Encoding``)."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        if status_code != 200 or not isinstance(response, FileResponse):
            response.headers["vary"] = "Accept-Encoding"
            return response
        response.headers["vary"] = "Accept-Encoding"
        media = response.media_type or ""
        request = Headers(scope=scope)
        if (
            stat_result.st_size < MINIMUM_SIZE
            or not media.startswith(COMPRESSIBLE)
            or not _accepts_gzip(request)
        ):
            return response
        etag = response.headers["etag"].rstrip('"') + '-gzip"'
        headers = {
            "etag": etag,
            "last-modified": response.headers["last-modified"],
            "vary": "Accept-Encoding",
        }
        if etag in [t.strip() for t in request.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        body = _gzipped(str(full_path), stat_result.st_mtime_ns, stat_result.st_size)
        headers["content-encoding"] = "gzip"
        return Response(body, media_type=response.headers["content-type"], headers=headers)
