"""Run the sources for an area into a raw folder and write ``fetch_manifest.json``.

The gmina boundaries come first: they give the area's extent (buffered) for the sources
that ask by bounding box. A source that fails is recorded and named, and the others
still arrive; each file reaches the folder whole (written beside, fsynced, renamed) or
not at all, so a file of an earlier fetch stays as it was when its source fails now.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from omw_sites.config import Settings
from omw_sites.sources import (
    bdot10k,
    egib_wfs,
    flood,
    natura2000,
    nmt,
    overpass,
    planning,
    uldk,
)
from omw_sites.sources.answers import BadAnswer, uldk_status
from omw_sites.sources.downloads import (
    Downloader,
    Fetched,
    SourceError,
    sha256_of,
    write_json_atomic,
)
from omw_sites.sources.spec import Area, BBox, Download, NotConfigured

MANIFEST = "fetch_manifest.json"  # the name etl.raw_folder looks for


@dataclass(frozen=True)
class Source:
    name: str
    downloads: Callable[[Area, Settings], list[Download]]
    licence: dict[str, str]
    gives: dict[str, str]
    needs_bbox: bool = True


SOURCES = (
    Source(uldk.NAME, uldk.downloads, uldk.LICENCE, uldk.GIVES, needs_bbox=False),
    Source(egib_wfs.NAME, egib_wfs.downloads, egib_wfs.LICENCE, egib_wfs.GIVES),
    Source(uldk.PARCELS, uldk.parcel_downloads, uldk.LICENCE, uldk.GIVES_PARCELS, needs_bbox=False),
    Source(bdot10k.NAME, bdot10k.downloads, bdot10k.LICENCE, bdot10k.GIVES, needs_bbox=False),
    Source(nmt.NAME, nmt.downloads, nmt.LICENCE, nmt.GIVES),
    Source(planning.NAME, planning.downloads, planning.LICENCE, planning.GIVES, needs_bbox=False),
    Source(flood.NAME, flood.downloads, flood.LICENCE, flood.GIVES),
    Source(natura2000.NAME, natura2000.downloads, natura2000.LICENCE, natura2000.GIVES),
    Source(overpass.NAME, overpass.downloads, overpass.LICENCE, overpass.GIVES),
)
NAMES = tuple(s.name for s in SOURCES)
# a source that is not configured is a failure only where `run` cannot do without it
REQUIRED = (egib_wfs.NAME,)


@dataclass
class Outcome:
    """What one fetch did."""

    files: list[dict[str, Any]] = field(default_factory=list)  # the manifest's entries
    failed: list[SourceError] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "source: why"
    bbox: BBox | None = None


def fetch(
    area: Area,
    out: Path,
    settings: Settings,
    *,
    only: list[str] | None = None,
    offline: bool = False,
    buffer_km: float = 15.0,
    on_file: Callable[[dict[str, Any]], None] | None = None,
    progress: TextIO | None = None,
) -> Outcome:
    """Fetch the sources ``only`` names (default: all; ``parcels-uldk`` only with parcel
    IDs) for ``area`` into ``out``; writes ``out/fetch_manifest.json``."""
    out.mkdir(parents=True, exist_ok=True)
    dl = Downloader(
        settings.source_cache,
        offline=offline,
        timeout=settings.source_timeout_s,
        retries=settings.source_retries,
        backoff=settings.source_backoff_s,
        min_interval=settings.source_min_interval_s,
        progress=progress,
    )
    result = Outcome()
    wanted = [s for s in SOURCES if (s.name in only if only else _default(s, area))]
    for source in wanted:
        if source.name == bdot10k.NAME and area.bbox is not None:
            _touched_powiaty(dl, area, settings, result)
        if source.needs_bbox and area.bbox is None:
            result.failed.append(
                SourceError(source.name, "", "the area's extent is unknown: the gmina "
                            "boundaries did not arrive (give --bbox)")
            )  # fmt: skip
            continue
        try:
            specs = source.downloads(area, settings)
        except NotConfigured as exc:
            if source.name in REQUIRED:
                result.failed.append(SourceError(source.name, "", str(exc)))
            else:
                result.skipped.append(f"{source.name}: {exc}")
            continue
        for spec in specs:
            try:
                entry = _one(dl, source, spec, out)
            except SourceError as exc:
                result.failed.append(exc)
                continue
            result.files.append(entry)
            if on_file:
                on_file(entry)
            if source.name == uldk.NAME and area.bbox is None:
                area.bbox = _extent(out / spec.target, buffer_km)
    result.bbox = area.bbox
    _write_manifest(out, area, result)
    return result


def _touched_powiaty(dl: Downloader, area: Area, settings: Settings, result: Outcome) -> None:
    """Add to ``area.powiaty`` every powiat the buffered area touches (ULDK's powiat at a
    grid of points), so the road network reaches beyond the gminy's own powiat."""
    assert area.bbox is not None
    for url in uldk.county_urls(area.bbox, settings):
        try:
            got = dl.get(uldk.NAME, url, uldk_status)
            code = uldk.county(Path(got.path))
        except SourceError as exc:
            if not exc.nothing:  # a point abroad or at sea has no powiat
                result.failed.append(exc)
                return
            continue
        except BadAnswer as exc:
            result.failed.append(SourceError(uldk.NAME, url, f"malformed answer: {exc}"))
            return
        if code not in area.powiaty:
            area.powiaty.append(code)


def _default(source: Source, area: Area) -> bool:
    if source.name == uldk.PARCELS:
        return bool(area.parcel_ids)
    if not area.gminy and area.bbox is None:  # parcels by ID only: no area to fetch
        return False
    return source.name != uldk.NAME or bool(area.gminy)


def _one(dl: Downloader, source: Source, spec: Download, out: Path) -> dict[str, Any]:
    """Download, check and place one file; its manifest entry."""
    got = [dl.get(source.name, url, spec.check, spec.data) for url in spec.urls]
    target = out / spec.target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(name)
    try:
        if spec.convert is not None:
            tmp.unlink()  # GDAL creates the file itself
            _convert(source, spec, got, tmp)
        else:
            shutil.copyfile(got[0].path, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    published = _published(got)
    if published:  # the file's date is the data's date, as `run` reads it
        stamp = published.timestamp()
        os.utime(target, (stamp, stamp))
    return {
        "file": spec.target,
        "source": source.name,
        "url": spec.urls[0] if len(spec.urls) == 1 else spec.urls,
        "licence": source.licence,
        "date": (published or _fetched_at(got)).date().isoformat(),
        "size": target.stat().st_size,
        "sha256": sha256_of(target),
        "answers": [_answer(a) for a in got],
    }


def _convert(source: Source, spec: Download, answers: list[Fetched], tmp: Path) -> None:
    """Make the file from the answers. GDAL stamps a GeoPackage with the time it is
    written; stamped with the answers' own date instead, the same answers give the same
    bytes, so a rebuild (304, --offline) keeps its checksum."""
    import pyogrio

    assert spec.convert is not None
    stamp = _published(answers) or _fetched_at(answers)
    pyogrio.set_gdal_config_options(
        {"OGR_CURRENT_DATE": stamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    )
    try:
        spec.convert([Path(a.path) for a in answers], tmp)
    except BadAnswer as exc:
        raise SourceError(source.name, spec.urls[0], f"malformed answer: {exc}") from exc
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})


def _answer(a: Fetched) -> dict[str, Any]:
    return {k: v for k, v in a.record().items() if v != ""}


def _fetched_at(answers: list[Fetched]) -> dt.datetime:
    return max(dt.datetime.fromisoformat(a.fetched) for a in answers)


def _published(answers: list[Fetched]) -> dt.datetime | None:
    dates = []
    for a in answers:
        if a.last_modified:
            try:
                dates.append(email.utils.parsedate_to_datetime(a.last_modified))
            except (TypeError, ValueError):
                continue
    return max(dates) if dates else None


def _extent(path: Path, buffer_km: float) -> BBox | None:
    import pyogrio

    try:
        xmin, ymin, xmax, ymax = pyogrio.read_info(path, force_total_bounds=True)["total_bounds"]
    except Exception:  # noqa: BLE001 - an unreadable file gives no extent; named by the caller
        return None
    b = buffer_km * 1000.0
    return (xmin - b, ymin - b, xmax + b, ymax + b)


def _write_manifest(out: Path, area: Area, result: Outcome) -> None:
    """``fetch_manifest.json``: this fetch's files, and the files of an earlier fetch
    still in the folder whose source failed now (marked ``"stale": true``)."""
    path = out / MANIFEST
    earlier: list[dict[str, Any]] = []
    if path.exists():
        try:
            earlier = list(json.loads(path.read_text(encoding="utf-8")).get("files", []))
        except (ValueError, AttributeError):
            earlier = []
    now = {f["file"] for f in result.files}
    kept = [
        {**f, "stale": True}
        for f in earlier
        if f.get("file") not in now and (out / str(f.get("file"))).exists()
    ]
    body = {
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "area": {"gminy": area.gminy, "powiaty": area.powiaty, "bbox_2180": area.bbox},
        "files": result.files + kept,
        "failed": [{"source": e.source, "url": e.url, "problem": e.problem} for e in result.failed],
        "skipped": result.skipped,
    }
    write_json_atomic(path, body)
