"""`omw-sites` commands of the etl stage: ``ingest PATH…`` and ``validate app FILE``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(stderr=True)
out = Console(width=200)
validate_app_group = typer.Typer(help="Validate planning data.", no_args_is_help=True)


def _fail(exc: BaseException, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=code)


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
) -> None:
    """Detect each file's format, read it into canonical layers and print a report."""
    from omw_sites.etl.detect import ingest_paths, write_results
    from omw_sites.etl.errors import IngestError
    from omw_sites.etl.gml import Limits

    limits = Limits(max_bytes=int(max_mb * 1024 * 1024), max_features=max_features)
    try:
        results = ingest_paths(paths, crs, limits)
    except IngestError as exc:
        _fail(exc)
    table = Table(title="ingest report")
    for col in ("file", "format", "layer", "CRS in", "read", "kept", "repaired", "quarantined"):
        table.add_column(col, justify="right" if col in ("read", "kept", "repaired") else "left")
    total_q = 0
    for r in results:
        reasons = r.quarantined_by_reason()
        total_q += len(r.quarantine)
        why = "; ".join(f"{n} {rule}" for rule, n in reasons.items()) or "0"
        table.add_row(
            escape(Path(str(r.extra.get("file", ""))).name),
            r.source_format,
            escape(f"{r.layer} → {r.key}"),
            r.crs_in,
            f"{r.read:,}",
            f"{r.kept:,}",
            f"{r.repaired:,}",
            escape(why),
        )
    out.print(table)
    if out_file is not None:
        try:
            write_results(results, out_file)
        except Exception as exc:  # disk full, permissions: nothing half-written
            _fail(exc)
        console.print(f"wrote {out_file} ({total_q:,} quarantined records)")


def validate_app(
    file: Annotated[Path, typer.Argument(help="APP GML file (StrefaPlanistyczna)")],
    plan: Annotated[
        Path | None, typer.Option(help="APP file with the act (extent), if not in FILE")
    ] = None,
    crs: Annotated[str | None, typer.Option(help="CRS if the file carries none")] = None,
) -> None:
    """Check an APP file's zones; exit 1 listing each defect with feature ID and rule."""
    from omw_sites.etl.app import RULES
    from omw_sites.etl.app import validate_app as run_validation
    from omw_sites.etl.errors import IngestError

    try:
        defects = run_validation(file, plan, crs)
    except IngestError as exc:
        _fail(exc)
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
