"""`omw-sites` commands of the etl stage: ``ingest PATH…`` and ``validate app FILE``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from omw_sites.commands.failure import fail, reported
from omw_sites.config import STREAM_BATCH_ROWS

console = Console(stderr=True)
out = Console(width=200)
validate_app_group = typer.Typer(help="Validate planning data.", no_args_is_help=True)


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or folders to read (zips opened)")],
    crs: Annotated[
        str | None, typer.Option(help="CRS for files that carry none, e.g. EPSG:2178")
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="GeoPackage to write the layers + quarantine to")
    ] = None,
    manifest_file: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            help="JSON file saying what each file became (default: beside --out as "
            "<name>.manifest.json, else beside a folder DIR as DIR.manifest.json)",
        ),
    ] = None,
    max_mb: Annotated[float, typer.Option(help="largest file accepted (MB)")] = 8192.0,
    max_features: Annotated[int, typer.Option(help="most features per file")] = 20_000_000,
    batch_rows: Annotated[
        int,
        typer.Option(
            min=1000, help="EGiB GPKG/SHP/GeoJSON exports larger than this are read in batches"
        ),
    ] = STREAM_BATCH_ROWS,
) -> None:
    """Detect each file's format by its content, read it into canonical layers and print
    a report on every file, used or not, and why.

    Folders are read recursively and zips opened, as the official sources hand them out.
    A file of no known format is listed with the reason and the others are read; a file
    of a known format that cannot be read is listed too, and ends the command with exit
    code 2 without writing ``--out``. Each result is written out (``--out``) and let go
    before the next is read, and large EGiB exports come in batches of ``--batch-rows``:
    memory holds one batch.
    """
    import tempfile

    from omw_sites.etl.gml import Limits
    from omw_sites.etl.raw_folder import discover

    limits = Limits(max_bytes=int(max_mb * 1024 * 1024), max_features=max_features)
    with tempfile.TemporaryDirectory(prefix="omw-ingest-") as scratch:
        with reported():
            files = discover(paths, Path(scratch), limits)
        rows, errors, quarantined = _read_files(files, crs, limits, batch_rows, out_file)
    _print_report(files, rows)
    target = manifest_file or _default_manifest(paths, out_file)
    if target is not None:
        _write_manifest(files, target)
    if errors:
        fail(f"{len(errors)} file(s) could not be read, nothing written: " + "; ".join(errors))
    if not any(f.used for f in files):
        fail("no file holds a layer the tool uses (see the report above)")
    if out_file is not None:
        console.print(f"wrote {out_file} ({quarantined:,} quarantined records)")


def _read_files(files, crs, limits, batch_rows, out_file):
    """Read every usable file, one result at a time, into ``out_file`` (when given).
    Returns the report rows per (file, layer, key), the read errors and the number of
    records quarantined. A read error leaves ``out_file`` unwritten."""
    from omw_sites.etl.detect import ResultWriter, read_file
    from omw_sites.etl.errors import IngestError

    rows: dict[tuple[str, str, str], dict] = {}  # (file, layer, key) → report row
    errors: list[str] = []
    writer = ResultWriter(out_file) if out_file is not None else None
    try:
        for rf in files:
            if rf.broken:
                errors.append(f"{rf.name}: {rf.why}")
            if rf.why:
                continue
            mine: dict[tuple[str, str, str], dict] = {}
            try:
                for r in read_file(rf, crs, limits, batch_rows):
                    _count(mine.setdefault((rf.name, r.layer, r.key), _row(r)), r)
                    if writer is not None and not errors:
                        writer.add(r)
                    del r  # one batch at a time
            except IngestError as exc:
                where = f" (layer {exc.layer!r})" if exc.layer else ""
                record = f", record {exc.record}" if exc.record else ""
                rf.skip(
                    f"{exc.problem}{where}{record}" + (f" [rule: {exc.rule}]" if exc.rule else "")
                )
                errors.append(f"{rf.name}: {rf.why}")
                continue
            for (_, layer, key), row in mine.items():
                rf.add(key, layer, row["read"], row["kept"], row["crs"])
            rows.update(mine)
        if writer is None:
            return rows, errors, 0
        if errors:
            writer.abort()
            return rows, errors, 0
        writer.close()
        return rows, errors, writer.quarantined
    except BaseException as exc:  # bad input, disk full, Ctrl-C: nothing half-written
        if writer is not None:
            writer.abort()
        if isinstance(exc, Exception):
            fail(exc)
        raise


def _row(r) -> dict:
    return {"format": r.source_format, "crs": r.crs_in, "read": 0, "kept": 0, "repaired": 0,
            "why": {}}  # fmt: skip


def _count(row: dict, r) -> None:
    row["read"] += r.read
    row["kept"] += r.kept
    row["repaired"] += r.repaired
    for rule, n in r.quarantined_by_reason().items():
        row["why"][rule] = row["why"].get(rule, 0) + n


def _print_report(files, rows) -> None:
    table = Table(title="ingest report")
    for col in ("file", "format", "layer", "CRS in", "read", "kept", "repaired", "quarantined"):
        table.add_column(col, justify="right" if col in ("read", "kept", "repaired") else "left")
    for rf in files:
        mine = [(k, row) for k, row in rows.items() if k[0] == rf.name]
        for (_, layer, key), row in mine:
            why = "; ".join(f"{n} {rule}" for rule, n in row["why"].items()) or "0"
            table.add_row(
                escape(rf.name), row["format"], escape(f"{layer} → {key}"), row["crs"],
                f"{row['read']:,}", f"{row['kept']:,}", f"{row['repaired']:,}", escape(why),
            )  # fmt: skip
        if rf.why or not mine:
            why = rf.why or "no layer the tool uses"
            table.add_row(escape(rf.name), rf.format or "-", escape(f"not used: {why}"))
    out.print(table)


def _default_manifest(paths: list[Path], out_file: Path | None) -> Path | None:
    """Where the manifest goes unless ``--manifest`` says: beside ``--out``, else beside
    the one folder read (the raw folder itself is left as downloaded)."""
    if out_file is not None:
        return out_file.with_name(f"{out_file.stem}.manifest.json")
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0].resolve()
        return folder.parent / f"{folder.name}.manifest.json"
    return None


def _write_manifest(files, target: Path) -> None:
    from omw_sites.etl.raw_folder import write_manifest

    try:
        write_manifest(files, target)
    except OSError as exc:
        console.print(f"[yellow]warning:[/] manifest not written to {escape(str(target))}: {exc}")
        return
    console.print(f"wrote {escape(str(target))} (what each of {len(files)} file(s) became)")


def validate_app(
    file: Annotated[Path, typer.Argument(help="APP GML file (StrefaPlanistyczna)")],
    plan: Annotated[
        Path | None, typer.Option(help="APP file with the act (extent), if not in FILE")
    ] = None,
    crs: Annotated[str | None, typer.Option(help="CRS if the file carries none")] = None,
) -> None:
    """Check an APP file's zones; exit 1 listing each defect with feature ID and rule."""
    from omw_sites.etl.planning_acts import RULES
    from omw_sites.etl.planning_acts import validate_app as run_validation

    with reported():
        defects = run_validation(file, plan, crs)
    if not defects:
        out.print(f"{escape(str(file))}: OK — {len(RULES)} rules checked, no defects")
        return
    table = Table(title=f"{file.name}: {len(defects)} defect(s)")
    for col in ("feature", "rule", "detail"):
        table.add_column(col)
    for d in defects:
        table.add_row(escape(d.feature_id), escape(d.rule), escape(d.detail))
    out.print(table)
    raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the main app."""
    app.command("ingest")(ingest)
    validate_app_group.command("app")(validate_app)
    app.add_typer(validate_app_group, name="validate")
