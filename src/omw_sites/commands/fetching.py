"""`omw-sites fetch`: a gmina's open data from the official services into a raw folder
(:mod:`omw_sites.sources`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from omw_sites.commands.failure import EXIT_ERROR, fail, print_error, reported
from omw_sites.sources.spec import Area

console = Console(stderr=True)


def fetch(
    out_dir: Annotated[Path, typer.Option("--out", help="raw folder to fill")],
    gmina: Annotated[
        list[str] | None,
        typer.Option(help="gmina TERYT, 7 digits (1465011) or ULDK's form (146501_1); repeatable"),
    ] = None,
    powiat: Annotated[
        list[str] | None,
        typer.Option(help="another powiat (4 digits) whose BDOT10k package to fetch; repeatable"),
    ] = None,
    bbox: Annotated[
        str | None,
        typer.Option(
            help="area as xmin,ymin,xmax,ymax in EPSG:2180 (default: the gminy, buffered)"
        ),
    ] = None,
    buffer_km: Annotated[
        float, typer.Option(min=0, help="buffer around the gminy for the area's sources (km)")
    ] = 15.0,
    offline: Annotated[
        bool, typer.Option("--offline", help="rebuild the folder from the cache, no network")
    ] = False,
    only: Annotated[
        list[str] | None, typer.Option(help="fetch only this source (repeatable); see below")
    ] = None,
    parcels_by_id: Annotated[
        Path | None,
        typer.Option(help="text or CSV file of EGiB parcel IDs to fetch through ULDK"),
    ] = None,
) -> None:
    """Download a gmina's open data from the official services into a raw folder that
    `omw-sites run --raw` reads: gmina boundaries (PRG through ULDK), EGiB parcels (the
    powiat's WFS) or single parcels by ID (ULDK), BDOT10k packages per powiat, the
    terrain model (NMT WCS), APP planning acts, flood zones, Natura 2000 (GDOŚ),
    OpenStreetMap (Overpass). Each file is recorded in OUT/fetch_manifest.json with its
    source, URL, licence, date and checksum. A source that fails is named on one line and
    the others still arrive; the exit code is then 2.

    Sources: boundaries, parcels, parcels-uldk, bdot10k, nmt, app, flood, natura2000, osm.
    Base URLs: OMW_SOURCE_<NAME>_URL (e.g. OMW_SOURCE_ULDK_URL); cache: OMW_SOURCE_CACHE.
    """
    from omw_sites.config import get_settings
    from omw_sites.sources.collect import NAMES
    from omw_sites.sources.collect import fetch as run_fetch

    area = _area(gmina or [], powiat or [], bbox, parcels_by_id)
    bad = [s for s in only or [] if s not in NAMES]
    if bad:
        fail(f"unknown source(s) {', '.join(bad)}; known: {', '.join(NAMES)}")

    def said(entry: dict) -> None:
        status = "/".join(sorted({a.get("status", "") for a in entry["answers"]}))
        console.print(
            f"  [green]✓[/] {entry['source']:<12} {escape(entry['file'])} "
            f"({entry['size'] / 2**20:,.1f} MB, {status})",
            highlight=False,
        )

    with reported():
        result = run_fetch(
            area,
            out_dir,
            get_settings(),
            only=only,
            offline=offline,
            buffer_km=buffer_km,
            on_file=said,
            progress=sys.stderr,
        )
    for why in result.skipped:
        console.print(f"  [yellow]![/] skipped {escape(why)}", highlight=False, soft_wrap=True)
    for exc in result.failed:
        print_error(exc)
    console.print(
        f"{len(result.files)} file(s) in {out_dir}, {len(result.failed)} source(s) failed; "
        f"manifest {out_dir / 'fetch_manifest.json'}",
        highlight=False,
    )
    if result.failed:
        raise typer.Exit(code=EXIT_ERROR)


def _area(gminy: list[str], powiaty: list[str], bbox: str | None, ids: Path | None) -> Area:
    from omw_sites.sources.spec import gmina_teryt

    try:
        codes = [gmina_teryt(g) for g in gminy]
    except ValueError as exc:
        fail(exc)
    for p in powiaty:
        if not (len(p) == 4 and p.isdigit()):
            fail(f"--powiat {p!r} is not a powiat TERYT (4 digits, e.g. 1465)")
    box = _bbox(bbox) if bbox else None
    parcel_ids = _parcel_ids(ids) if ids else []
    if not codes and box is None and not parcel_ids:
        fail("give --gmina TERYT (repeatable), --bbox or --parcels-by-id")
    pows = list(dict.fromkeys([c[:4] for c in codes] + powiaty))
    return Area(gminy=codes, powiaty=pows, bbox=box, parcel_ids=parcel_ids)


def _bbox(text: str) -> tuple[float, float, float, float]:
    try:
        xmin, ymin, xmax, ymax = (float(v) for v in text.split(","))
    except ValueError:
        fail(f"--bbox {text!r}: expected xmin,ymin,xmax,ymax in EPSG:2180")
    if not (xmin < xmax and ymin < ymax and 100_000 < xmin < 900_000 and 100_000 < ymin < 900_000):
        fail(f"--bbox {text!r}: not an area in EPSG:2180 (Poland: E and N 100,000–900,000 m)")
    return xmin, ymin, xmax, ymax


def _parcel_ids(path: Path) -> list[str]:
    """Parcel IDs of a text file (one a line) or a CSV with a ``parcel_id`` column."""
    from omw_sites.etl.errors import IngestError

    with reported():
        if not path.is_file():
            raise IngestError(path, "no such file")
        lines = [x.strip() for x in path.read_text(encoding="utf-8-sig").splitlines() if x.strip()]
    if lines and "parcel_id" in lines[0].lower().split(","):
        col = lines[0].lower().split(",").index("parcel_id")
        lines = [row.split(",")[col].strip().strip('"') for row in lines[1:]]
    if not lines:
        fail(f"{path}: no parcel ID")
    return list(dict.fromkeys(lines))


def register(app: typer.Typer) -> None:
    """Add `fetch` to the main app."""
    app.command("fetch")(fetch)
