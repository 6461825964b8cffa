"""Parsing a large GML file in several processes: byte ranges cut at feature members.

A GML ``FeatureCollection`` is a root element holding one ``featureMember`` (or
``member``) per feature. :func:`split_members` cuts the file into byte ranges that
end just after a member's end tag; :func:`chunk_document` wraps a range in the file's
own prolog and root start tag (so every namespace declaration and the declared encoding
still apply) and a closing root tag. The last range keeps the file's real ending, so a
truncated file stays truncated. :func:`map_chunks` runs a worker function over the
ranges in a process pool and yields the results in file order.

The chunked path only speeds up what the serial reader does: a reader that uses it
falls back to its serial path whenever a chunk fails (:class:`ChunksFailed`), so every
error is reported exactly as the serial reader reports it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

WORKERS_ENV = "OMW_INGEST_WORKERS"
CHUNK_BYTES = 4 * 1024**2  # one range ≈ 6k EGiB parcels: bounded memory per worker
MIN_PARALLEL_BYTES = 16 * 1024**2  # smaller files are read serially (measured: start-up)

_HEAD_WINDOW = 1024**2
_NAME = rb"[A-Za-z_][\w.\-]*"
_QNAME = re.compile(rb"<(" + _NAME + rb"(?::" + _NAME + rb")?)")
_MEMBER = re.compile(rb"<((?:" + _NAME + rb":)?(?:featureMember|member))[\s/>]")


def ingest_workers() -> int:
    """Worker processes for one file: ``OMW_INGEST_WORKERS`` (default: CPU count); 1 = serial.

    Always 1 in a daemonic process (a Dask worker of a partitioned run): it may not start
    processes, and the cluster already spreads the work over the cores."""
    if mp.current_process().daemon:
        return 1
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            msg = f"{WORKERS_ENV}={raw!r} is not a whole number of processes; using the CPU count"
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
    return os.cpu_count() or 1


class ChunksFailed(Exception):
    """A chunk could not be read in parallel; the caller reads the file serially."""


@dataclass(frozen=True)
class MemberSplit:
    """Byte ranges of a GML file, each a run of whole members of the root element.

    Attributes
    ----------
    head : the file's bytes up to the end of the root start tag (prolog included)
    tail : a closing tag for the root element
    ranges : ``(start, end)`` byte offsets; the first starts at 0, the last ends at EOF
    """

    head: bytes
    tail: bytes
    ranges: tuple[tuple[int, int], ...]


def _skip_prolog(buf: bytes) -> int | None:
    """Offset of the root start tag's ``<``; None for a DOCTYPE or an unusual start."""
    i = 3 if buf.startswith(b"\xef\xbb\xbf") else 0
    n = len(buf)
    while i < n:
        c = buf[i : i + 1]
        if c in (b" ", b"\t", b"\r", b"\n"):
            i += 1
        elif buf.startswith(b"<?", i):
            j = buf.find(b"?>", i)
            if j < 0:
                return None
            i = j + 2
        elif buf.startswith(b"<!--", i):
            j = buf.find(b"-->", i)
            if j < 0:
                return None
            i = j + 3
        elif c == b"<" and not buf.startswith(b"<!", i):
            return i
        else:  # DOCTYPE (entities would not reach the chunks), UTF-16, text …
            return None
    return None


def _tag_end(buf: bytes, i: int) -> int | None:
    """Offset just after the ``>`` closing the start tag at ``i`` (quotes respected)."""
    quote = None
    n = len(buf)
    while i < n:
        c = buf[i]
        if quote is not None:
            if c == quote:
                quote = None
        elif c in (0x22, 0x27):  # " '
            quote = c
        elif c == 0x3E:  # >
            return i + 1
        i += 1
    return None


def split_members(path: Path, chunk_bytes: int = CHUNK_BYTES) -> MemberSplit | None:
    """Cut ``path`` into ranges of about ``chunk_bytes`` ending after a member end tag.

    Returns None when the file cannot be cut safely (no ``featureMember``/``member``
    children found near the start, a DOCTYPE, a non-ASCII-compatible encoding …) or
    when it would make a single range; the caller then reads it serially.
    """
    import mmap

    size = os.path.getsize(path)
    with open(path, "rb") as f:
        buf = f.read(min(size, _HEAD_WINDOW))
        start = _skip_prolog(buf)
        if start is None:
            return None
        m = _QNAME.match(buf, start)
        end = _tag_end(buf, start) if m else None
        if m is None or end is None or buf[end - 2 : end] == b"/>":
            return None
        root = m.group(1)
        member = _MEMBER.search(buf, end)
        if member is None:
            return None
        closing = b"</" + member.group(1)
        head, tail = buf[:end], b"</" + root + b">"
        bounds = [0]
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            pos = end
            while True:
                k = mm.find(closing, pos + chunk_bytes)
                if k < 0:
                    break
                j = k + len(closing)
                while j < size and mm[j] in b" \t\r\n":
                    j += 1
                if j >= size or mm[j] != 0x3E:  # not this member's end tag (a longer name)
                    pos = j - chunk_bytes
                    continue
                bounds.append(j + 1)
                pos = j + 1
    if len(bounds) < 2:
        return None
    bounds.append(size)
    return MemberSplit(head, tail, tuple(zip(bounds[:-1], bounds[1:], strict=True)))


def chunk_document(path: str, head: bytes, tail: bytes, start: int, end: int) -> bytes:
    """The XML document of one range: prolog + root start tag, the members, root end tag.

    The first range already starts with the prolog; the last keeps the file's own end
    (so a truncated file fails in the chunk as it does in the whole file).
    """
    with open(path, "rb") as f:
        f.seek(start)
        body = f.read(end - start)
    size = os.path.getsize(path)
    return (head if start else b"") + body + (tail if end < size else b"")


def _context() -> mp.context.BaseContext:
    """``fork`` where it is safe (Linux, no other Python thread running), else a clean start.

    A forked child inherits the imported modules, so a pool starts in milliseconds;
    with other threads alive (a web server) a lock one of them holds could be copied
    locked, so the pool then starts its processes from ``forkserver`` / ``spawn``.
    """
    methods = mp.get_all_start_methods()
    if sys.platform == "linux" and "fork" in methods and threading.active_count() == 1:
        return mp.get_context("fork")
    return mp.get_context("forkserver" if "forkserver" in methods else "spawn")


T = TypeVar("T")  # what a chunk function returns


def map_chunks(
    fn: Callable[..., T],
    path: Path,
    split: MemberSplit,
    workers: int,
    *args: object,
) -> Iterator[T]:
    """``fn(path, head, tail, start, end, *args)`` for every range, in file order.

    Raises
    ------
    ChunksFailed
        A worker raised (bad XML, bad coordinates, a limit, a dead process …); the
        remaining work is cancelled.
    """
    with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
        futures = [
            pool.submit(fn, str(path), split.head, split.tail, a, b, *args) for a, b in split.ranges
        ]
        try:
            for fut in futures:
                try:
                    yield fut.result()
                except Exception as exc:
                    raise ChunksFailed(str(exc)) from exc
        finally:
            for fut in futures:
                fut.cancel()
