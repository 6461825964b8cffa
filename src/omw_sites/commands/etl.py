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
    paths: Annotated[list[Path], typer.Argument(help="files or folders to read")],
    crs: Annotated[
        str | None, typer.Option(help="CRS for files that carry none, e.g. EPSG:2178")
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="GeoPackage to write the layers + quarantine to")
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
    """Detect each file's format, read it into canonical layers and print a report.

    Each result is written out (``--out``) and let go before the next is read, and large
    EGiB exports come in batches of ``--batch-rows``: memory holds one batch.
    """
    from omw_sites.etl.detect import ResultWriter, iter_ingest
    from omw_sites.etl.gml import Limits

    limits = Limits(max_bytes=int(max_mb * 1024 * 1024), max_features=max_features)
    rows: dict[tuple[str, str, str], dict] = {}  # (file, layer, key) → report row
    writer = ResultWriter(out_file) if out_file is not None else None
    try:
        for r in iter_ingest(paths, crs, limits, batch_rows):
            row = rows.setdefault(
                (str(r.extra.get("file", "")), r.layer, r.key),
                {"format": r.source_format, "crs": r.crs_in, "read": 0, "kept": 0,
                 "repaired": 0, "why": {}},
            )  # fmt: skip
            row["read"] += r.read
            row["kept"] += r.kept
            row["repaired"] += r.repaired
            for rule, n in r.quarantined_by_reason().items():
                row["why"][rule] = row["why"].get(rule, 0) + n
            if writer is not None:
                writer.add(r)
            del r  # one batch at a time
        if writer is not None:
            writer.close()
    except BaseException as exc:  # bad input, disk full, Ctrl-C: nothing half-written
        if writer is not None:
            writer.abort()
        if isinstance(exc, Exception):
            fail(exc)
        raise
    table = Table(title="ingest report")
    for col in ("file", "format", "layer", "CRS in", "read", "kept", "repaired", "quarantined"):
        table.add_column(col, justify="right" if col in ("read", "kept", "repaired") else "left")
    for (file, layer, key), row in rows.items():
        why = "; ".join(f"{n} {rule}" for rule, n in row["why"].items()) or "0"
        table.add_row(
            escape(Path(file).name),
            row["format"],
            escape(f"{layer} → {key}"),
            row["crs"],
            f"{row['read']:,}",
            f"{row['kept']:,}",
            f"{row['repaired']:,}",
            escape(why),
        )
    out.print(table)
    if writer is not None:
        console.print(f"wrote {out_file} ({writer.quarantined:,} quarantined records)")


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
