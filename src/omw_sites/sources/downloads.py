"""HTTP for every source: a cache with validators, resumed downloads, retries, a polite
rate limit, a progress line, and nothing half-written.

Standard library only (``urllib``): the downloads are few and large, and a plain client
makes the wire behaviour plain too.

- **Cache**: one body per request (URL and POST body) under the cache folder, with a JSON
  record of the URL, ``ETag``, ``Last-Modified``, size, SHA-256 and date. A cached
  request is sent again with ``If-None-Match`` / ``If-Modified-Since``; ``304`` reuses
  the body. ``offline=True`` answers from the cache only.
- **Resume**: a download goes to ``<key>.part``; when the connection drops, the next
  attempt asks ``Range: bytes=<have>-`` with ``If-Range`` (the validator the part came
  with), so a changed file restarts instead of being spliced.
- **Retries**: a 5xx, 429, timeout or dropped connection is tried again after a wait that
  doubles (``backoff``), ``retries`` times; a 4xx is final.
- **Checks**: an answer is checked (:mod:`omw_sites.sources.answers`) before it replaces
  the cached body; a malformed answer is dropped and the earlier body stays.
- **Atomic**: the body is fsynced and renamed into place; so is every record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from omw_sites.sources.answers import BadAnswer, NoResult

CHUNK = 1 << 16
USER_AGENT = "omw-sites/0.1 (omw-sites fetch; open data of Polish public services)"
# what a dropped link, a stalled socket or a refused connection raises
TRANSIENT = (
    http.client.IncompleteRead,
    http.client.RemoteDisconnected,
    ConnectionError,
    TimeoutError,
    socket.timeout,
    urllib.error.URLError,
)


class SourceError(Exception):
    """A source that did not arrive: names the source, the problem and the URL."""

    def __init__(self, source: str, url: str, problem: str, nothing: bool = False) -> None:
        super().__init__(f"{source}: {problem}" + (f" ({url})" if url else ""))
        self.source, self.url, self.problem = source, url, problem
        self.nothing = nothing  # the service said it has nothing for the request


@dataclass
class Fetched:
    """A checked answer in the cache."""

    url: str
    path: str  # the cached body
    size: int
    sha256: str
    etag: str
    last_modified: str
    content_type: str
    fetched: str  # when the body was downloaded (UTC, ISO)
    status: str = "downloaded"  # or "resumed", "not modified", "offline"

    def record(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("path")
        return out


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json_atomic(path: Path, body: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(body, f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Downloader:
    """Downloads into ``cache`` (see the module's description)."""

    def __init__(
        self,
        cache: Path,
        *,
        offline: bool = False,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 2.0,
        min_interval: float = 1.0,
        progress: TextIO | None = None,
    ) -> None:
        self.cache = Path(cache)
        self.offline = offline
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.min_interval = min_interval
        self._last: dict[str, float] = {}  # host -> time of its last request
        # progress lines only for a person watching (stderr a terminal)
        self.progress = progress if progress is not None and progress.isatty() else None
        self._opener = urllib.request.build_opener()

    def get(
        self,
        source: str,
        url: str,
        check: Callable[[Path], None],
        data: bytes | None = None,
    ) -> Fetched:
        """The checked answer to ``url`` (a POST of ``data`` when given).

        Raises
        ------
        SourceError
            The service failed after the retries, refused the request, sent a malformed
            answer, or (offline) the answer is not in the cache.
        """
        self.cache.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(url.encode() + b"\n" + (data or b"")).hexdigest()[:40]
        body, meta = self.cache / f"{key}.body", self.cache / f"{key}.json"
        cached = _read_meta(meta) if body.exists() else None
        if self.offline:
            if cached is None:
                raise SourceError(source, url, "not in the cache (fetch once without --offline)")
            if sha256_of(body) != cached.sha256:
                raise SourceError(source, url, "the cached copy does not match its checksum")
            fetched = _with(cached, path=str(body), status="offline")
        else:
            fetched = self._download(source, url, check, data, key, cached)
        if fetched.status in ("offline", "not modified"):
            _checked(source, url, check, body)  # "nothing found" is cached too
        return fetched

    def _download(
        self,
        source: str,
        url: str,
        check: Callable[[Path], None],
        data: bytes | None,
        key: str,
        cached: Fetched | None,
    ) -> Fetched:
        body, meta = self.cache / f"{key}.body", self.cache / f"{key}.json"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                got = self._attempt(source, url, data, key, cached)
            except _Retry as exc:
                last = str(exc)
                continue
            if got is None:  # 304: the cached body is current
                assert cached is not None
                return _with(cached, path=str(body), status="not modified")
            part, info = got
            try:
                _checked(source, url, check, part)
            except SourceError as exc:
                if exc.nothing:  # a proper answer: kept, so that --offline gives it again
                    self._keep(url, part, body, meta, info)
                else:
                    part.unlink(missing_ok=True)
                    _part_meta(part).unlink(missing_ok=True)
                raise
            return self._keep(url, part, body, meta, info)
        n = self.retries + 1
        raise SourceError(source, url, f"{last} (after {n} attempt{'s' if n > 1 else ''})")

    def _wait_turn(self, url: str) -> None:
        host = urlsplit(url).netloc
        wait = self._last.get(host, -1e9) + self.min_interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last[host] = time.monotonic()

    def _attempt(
        self, source: str, url: str, data: bytes | None, key: str, cached: Fetched | None
    ) -> tuple[Path, dict[str, Any]] | None:
        """One request. Returns the downloaded ``.part`` and its validators, or None for
        304. Raises ``_Retry`` on what may pass (5xx, timeouts, a dropped link) and
        SourceError on what will not (4xx)."""
        part = self.cache / f"{key}.part"
        have = part.stat().st_size if part.exists() else 0
        pmeta = _read_json(_part_meta(part))
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if cached is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        validator = pmeta.get("etag") or pmeta.get("last_modified")
        if have and data is None and validator:
            headers["Range"] = f"bytes={have}-"
            headers["If-Range"] = validator
        self._wait_turn(url)
        request = urllib.request.Request(url, data=data, headers=headers)
        try:
            resp = self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 304 and cached is not None:
                return None
            if exc.code == 416:  # the part is not a prefix of the file any more
                part.unlink(missing_ok=True)
                raise _Retry(f"HTTP 416 for bytes {have}-") from exc
            if exc.code >= 500 or exc.code == 429:
                raise _Retry(f"HTTP {exc.code} {exc.reason}") from exc
            raise SourceError(source, url, f"HTTP {exc.code} {exc.reason}") from exc
        except TRANSIENT as exc:
            raise _Retry(_why(exc)) from exc
        with resp:
            resumed = resp.status == 206 and _range_start(resp) == have
            info = {
                "etag": resp.headers.get("ETag", ""),
                "last_modified": resp.headers.get("Last-Modified", ""),
                "content_type": resp.headers.get("Content-Type", ""),
                "resumed": resumed or bool(pmeta.get("resumed")) and resp.status == 206,
            }
            if not resumed:
                have = 0
            total = _total_length(resp, have)
            write_json_atomic(_part_meta(part), info)
            self._stream(resp, part, have, total, source)
        return part, info

    def _stream(self, resp, part: Path, have: int, total: int | None, source: str) -> None:
        done = have
        with open(part, "ab" if have else "wb") as f:
            try:
                while block := resp.read(CHUNK):
                    f.write(block)
                    done += len(block)
                    self._show(source, done, total)
            except TRANSIENT as exc:
                f.flush()
                os.fsync(f.fileno())
                raise _Retry(f"{_why(exc)} after {done:,} bytes") from exc
            f.flush()
            os.fsync(f.fileno())
        self._show(source, done, total, end=True)
        if total is not None and done < total:  # closed early without an error
            raise _Retry(f"connection closed after {done:,} of {total:,} bytes")

    def _keep(self, url: str, part: Path, body: Path, meta: Path, info: dict[str, Any]) -> Fetched:
        fetched = Fetched(
            url=url,
            path=str(body),
            size=part.stat().st_size,
            sha256=sha256_of(part),
            etag=info["etag"],
            last_modified=info["last_modified"],
            content_type=info["content_type"],
            fetched=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            status="resumed" if info.get("resumed") else "downloaded",
        )
        os.replace(part, body)
        rec = asdict(fetched)
        del rec["path"], rec["status"]
        write_json_atomic(meta, rec)
        _part_meta(part).unlink(missing_ok=True)
        return fetched

    def _show(self, source: str, done: int, total: int | None, end: bool = False) -> None:
        if self.progress is None:
            return
        of = f" of {total / 2**20:,.1f}" if total else ""
        self.progress.write(f"\r  {source:<11} {done / 2**20:,.1f}{of} MB")
        if end:
            self.progress.write("\n")
        self.progress.flush()


def _checked(source: str, url: str, check: Callable[[Path], None], path: Path) -> None:
    try:
        check(path)
    except NoResult as exc:
        raise SourceError(source, url, str(exc), nothing=True) from exc
    except BadAnswer as exc:
        raise SourceError(source, url, f"malformed answer: {exc}") from exc


class _Retry(Exception):
    """A failure worth another attempt."""


def _part_meta(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _read_meta(path: Path) -> Fetched | None:
    rec = _read_json(path)
    try:
        return Fetched(path="", **rec)
    except TypeError:  # no record, or one from another version: download again
        return None


def _with(f: Fetched, **changes: Any) -> Fetched:
    return Fetched(**{**asdict(f), **changes})


def _range_start(resp) -> int:
    """The first byte of a 206 answer (``Content-Range: bytes 100-199/200``)."""
    value = resp.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return -1


def _total_length(resp, have: int) -> int | None:
    length = resp.headers.get("Content-Length")
    return have + int(length) if length and length.isdigit() else None


def _why(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, str):
        exc = exc.reason
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, http.client.IncompleteRead):
        return "connection dropped"
    return f"{type(exc).__name__}: {exc}"
