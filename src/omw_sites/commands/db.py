"""Inventory commands: ``db init|load|status|history|changes|provenance|export``,
``site show|set-status|edit`` and ``apikey add|list|revoke``."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from omw_sites.commands.failure import fail, reported
from omw_sites.commands.options import StoreOpt, resolve_store

console = Console(stderr=True)
out = Console()

db_app = typer.Typer(help="The regional inventory database (GeoPackage or PostGIS).")
site_app = typer.Typer(help="Edit one site record: status lifecycle and offer details.")
key_app = typer.Typer(help="API keys: who may change which gminy's sites through the API.")


def _inventory(store: str | None):
    from omw_sites.store import open_inventory

    return open_inventory(resolve_store(store))


def _table(title: str, frame, columns: list[str] | None = None) -> Table:
    table = Table(title=title)
    cols = columns or list(frame.columns)
    for c in cols:
        table.add_column(c)
    for row in frame[cols].itertuples(index=False):
        table.add_row(*("" if v is None or v != v else escape(str(v)) for v in row))
    return table


@db_app.command("init")
def init(store: StoreOpt = None) -> None:
    """Create an empty inventory (history, runs, provenance tables) if there is none."""
    from omw_sites.store import display_target

    with reported(ValueError):
        inv = _inventory(store)
        inv.init()
        twice = inv.duplicate_current_ids()
    console.print(f"inventory ready: {display_target(inv.target)}")
    _warn_duplicates(inv.target, twice)


def _warn_duplicates(target: str, ids: list[str]) -> None:
    """One line naming site IDs with two current records (a store from before they were
    prevented)."""
    from omw_sites.store.base import duplicates_message

    if ids:
        console.print(
            f"[bold yellow]warning:[/] {escape(duplicates_message(target, ids))}",
            highlight=False,
            soft_wrap=True,
        )


@db_app.command("load")
def load(
    raw: Annotated[Path, typer.Argument(help="raw data folder (see README: data it reads)")],
    gmina: Annotated[
        list[str] | None,
        typer.Option(help="TERYT of a gmina this dataset updates (repeatable); default all"),
    ] = None,
    profile: Annotated[list[str] | None, typer.Option(help="profile (repeatable)")] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="output folder: the inventory is OUT/omw_sites.gpkg unless --store or "
            "OMW_DATABASE_URL names another",
        ),
    ] = None,
    store: StoreOpt = None,
    allow_mass_end: Annotated[
        bool,
        typer.Option(
            "--allow-mass-end",
            help="write the update even if it ends more than a fifth of the current sites "
            "in scope (refused otherwise: a wrong CRS or a partial dataset looks like that)",
        ),
    ] = False,
) -> None:
    """Load a (newer) raw dataset into the inventory, writing only what changed.

    Reads, measures and scores the dataset's sites and updates the inventory in one
    transaction; reports added / changed / ended. An update that would end more than a
    fifth of the current sites in scope stops before writing unless --allow-mass-end."""
    from omw_sites.pipeline import run as run_pipeline

    target = resolve_store(store, out_dir)
    for code in gmina or []:
        if not (code.isdigit() and len(code) == 7):
            fail(f"--gmina {code!r}: a gmina TERYT code has 7 digits (e.g. 1418043)")

    def progress(stage: str, msg: str, n: int) -> None:
        console.print(f"  [green]✓[/] {stage:<9} {escape(msg)}", highlight=False, soft_wrap=True)

    with reported(ValueError):
        summary = run_pipeline(
            raw,
            profiles=profile or None,
            progress=progress,
            store=target,
            scope=list(gmina) if gmina else None,
            allow_mass_end=allow_mass_end,
        )
    ch = summary.changes
    assert ch is not None  # pipeline.run always reports what it wrote
    table = Table(title=f"inventory update {ch.run_id} ({ch.kind}, scope {ch.scope})")
    for col in ("added", "changed", "ended", "unchanged", "re-scored", "duplicates merged"):
        table.add_column(col, justify="right")
    table.add_row(
        *(f"{v:,}" for v in (ch.added, ch.changed, ch.ended, ch.unchanged, ch.rescored)),
        f"{len(ch.merged):,}",
    )
    out.print(table)
    if ch.fields_changed:
        fields = ", ".join(f"{k} {v:,}" for k, v in sorted(ch.fields_changed.items()))
        out.print(f"fields changed: {fields}", highlight=False)
    for kept, old, why in ch.merged:
        out.print(f"merged: {old} → {kept} ({why})", highlight=False)


@functools.wraps(load)
def _ingest_alias(*args: Any, **kwargs: Any) -> None:
    """`db ingest`, the old name of `db load` (`omw-sites ingest` reads raw files): kept,
    hidden, so that scripts written for it still run."""
    console.print(
        "[yellow]notice:[/] `db ingest` is now `db load`; the old name will go",
        highlight=False,
        soft_wrap=True,
    )
    load(*args, **kwargs)


db_app.command("ingest", hidden=True)(_ingest_alias)


@db_app.command("status")
def status(
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Sites per status and gmina, ended records, history size and the last runs."""
    import pandas as pd

    with reported(ValueError):
        summary = _inventory(store).summary()
    _warn_duplicates(summary["store"], summary.get("duplicate_current", []))
    if as_json:
        out.print_json(json.dumps(summary, default=str))
        return
    out.print(
        f"[bold]{summary['sites']:,}[/] current sites, {summary['ended']:,} ended records, "
        f"{summary.get('history_rows', 0):,} history rows — {escape(summary['store'])}",
        highlight=False,
    )
    if summary.get("by_status"):
        out.print(
            "status: " + ", ".join(f"{k} {v:,}" for k, v in summary["by_status"].items()),
            highlight=False,
        )
    if summary.get("by_gmina"):
        out.print(_table("sites per gmina", pd.DataFrame(summary["by_gmina"])))
    if summary.get("runs"):
        out.print(_table("last runs", pd.DataFrame(summary["runs"])))


@db_app.command("history")
def history(
    site: Annotated[str, typer.Argument(help="site ID, e.g. S0efd593c3f")],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Every change of one site: creation, changed fields (old → new), status, offer, end."""
    with reported(ValueError):
        frame = _inventory(store).history(site)
    if as_json:
        out.print_json(frame.to_json(orient="records", force_ascii=False))
        return
    cols = ["changed_at", "kind", "field", "old_value", "new_value", "source"]
    out.print(_table(f"history of {site}", frame, cols))


@db_app.command("changes")
def changes(
    since: Annotated[str, typer.Option(help="ISO date or date-time, e.g. 2026-11-01")],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The change feed: sites created, changed or ended since a moment."""
    with reported(ValueError):
        frame = _inventory(store).changed_since(since)
    if as_json:
        out.print_json(frame.to_json(orient="records", force_ascii=False))
        return
    cols = ["updated_at", "site_id", "change", "teryt", "status", "fields"]
    out.print(_table(f"{len(frame):,} sites changed since {since}", frame, cols))


@db_app.command("provenance")
def provenance(
    site: Annotated[str, typer.Argument(help="site ID")],
    store: StoreOpt = None,
) -> None:
    """Where each attribute of a site came from: source datasets, data date, run or user."""
    with reported(ValueError):
        frame = _inventory(store).provenance(site)
    out.print(_table(f"provenance of {site}", frame))


@db_app.command("export")
def export(
    path: Annotated[Path, typer.Argument(help="output file (.gpkg .geojson .csv .xlsx .parquet)")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="gpkg | geojson | csv | xlsx | parquet")
    ] = None,
    include_ended: Annotated[
        bool, typer.Option("--include-ended", help="also ended records")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Export the inventory's sites (atomic write)."""
    from omw_sites.store.export import export_sites

    with reported(ValueError):
        written, n = export_sites(_inventory(store), path, fmt, include_ended=include_ended)
    console.print(f"  [green]✓[/] {n:,} sites → {written}")


def _print_record(rec, fields: list[str]) -> None:
    from omw_sites.store import Inventory

    values = {f: rec.get(f) for f in fields}
    values["version"] = Inventory.record_version(rec)  # for the next --if-version
    out.print(
        f"{rec['site_id']}: "
        + ", ".join(f"{k}={v}" for k, v in values.items() if v is not None and v == v),
        highlight=False,
        soft_wrap=True,  # one line per site, for scripts that read the version
    )


IfVersionOpt = Annotated[
    str | None,
    typer.Option(
        "--if-version",
        help="change the site only if it is still at this version (printed by `site show` "
        "and after every change); refused if someone changed it meanwhile",
    ),
]


@site_app.command("show")
def show(
    site: Annotated[str, typer.Argument(help="site ID")],
    store: StoreOpt = None,
) -> None:
    """Print a site's status, offer details and version (for --if-version)."""
    from omw_sites.store.inventory import EDITABLE
    from omw_sites.store.lifecycle import current_record

    with reported(ValueError):
        rec = current_record(_inventory(store), site)
    _print_record(rec, ["teryt", *EDITABLE, "updated_at"])


@site_app.command("set-status")
def set_status(
    site: Annotated[str, typer.Argument(help="site ID")],
    status: Annotated[str, typer.Argument(help="available | reserved | sold | withdrawn")],
    by: Annotated[str, typer.Option(help="who makes the change (kept in the history)")],
    date: Annotated[str | None, typer.Option(help="date of the change (default today)")] = None,
    if_version: IfVersionOpt = None,
    store: StoreOpt = None,
) -> None:
    """Move a site along its lifecycle: available → reserved → sold, or withdrawn."""
    with reported(ValueError):
        rec = _inventory(store).set_status(site, status, by, date, if_version=if_version)
    _print_record(rec, ["status", "status_date"])


@site_app.command("edit")
def edit(
    site: Annotated[str, typer.Argument(help="site ID")],
    by: Annotated[str, typer.Option(help="who makes the change (kept in the history)")],
    price: Annotated[float | None, typer.Option(help="asking price, PLN/m²")] = None,
    lease: Annotated[float | None, typer.Option(help="lease, PLN/m² per year")] = None,
    contact: Annotated[str | None, typer.Option(help="contact for investors")] = None,
    document: Annotated[
        list[str] | None,
        typer.Option(help="TITLE=URL (repeatable; prefix 'internal:' for non-public)"),
    ] = None,
    sez: Annotated[
        str | None, typer.Option(help="special economic zone / Polish Investment Zone status")
    ] = None,
    notes: Annotated[str | None, typer.Option(help="notes")] = None,
    if_version: IfVersionOpt = None,
    store: StoreOpt = None,
) -> None:
    """Set offer details investors expect: price or lease, contact, documents, SEZ, notes."""
    changes: dict[str, Any] = {}
    for key, value in (
        ("price_pln_m2", price),
        ("lease_pln_m2_year", lease),
        ("contact", contact),
        ("sez_status", sez),
        ("notes", notes),
    ):
        if value is not None:
            changes[key] = value
    if document:
        docs = []
        for item in document:
            public = not item.startswith("internal:")
            title, sep, url = item.removeprefix("internal:").partition("=")
            if not sep:
                fail(f"--document {item!r}: write TITLE=URL")
            docs.append({"title": title, "url": url, "public": public})
        changes["documents"] = docs
    with reported(ValueError):
        rec = _inventory(store).edit(site, changes, by, if_version=if_version)
    _print_record(rec, ["status", *changes])


@key_app.command("add")
def key_add(
    name: Annotated[str, typer.Argument(help="who holds the key, e.g. 'COI Marki'")],
    gmina: Annotated[
        list[str] | None,
        typer.Option(help="TERYT of a gmina the key may change (repeatable); '*' = all"),
    ] = None,
    region: Annotated[
        bool,
        typer.Option(
            "--region",
            help="the regional office's key: any site, and investor enquiries (POST /enquiries)",
        ),
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Create an API key for PATCH /collections/sites/items/{id} (and, with --region, for
    the enquiries); printed once."""
    if region == bool(gmina):
        fail("give --gmina TERYT (repeatable) for a gmina's key, or --region for the office's")
    scope = ["region"] if region else list(gmina or [])
    with reported(ValueError):
        key = _inventory(store).add_api_key(name, scope)
    shown = "regional office" if region else f"gminy {', '.join(scope)}"
    console.print(f"key for {escape(name)} ({shown}); store it now, it is shown once:")
    out.print(key, highlight=False)


@key_app.command("list")
def key_list(store: StoreOpt = None) -> None:
    """Keys ever made: holder, gminy, created, revoked (never the keys themselves)."""
    with reported(ValueError):
        keys = _inventory(store).api_keys()
    out.print(_table("API keys", keys, ["name", "teryt", "created_at", "revoked_at"]))


@key_app.command("revoke")
def key_revoke(
    name: Annotated[str, typer.Argument(help="holder whose active key to revoke")],
    store: StoreOpt = None,
) -> None:
    """Revoke a holder's key (kept in the list with the revocation time)."""
    with reported(ValueError):
        n = _inventory(store).revoke_api_key(name)
    console.print(f"revoked {n} key(s) of {escape(name)}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(site_app, name="site")
    app.add_typer(key_app, name="apikey")
