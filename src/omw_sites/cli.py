"""Command line: ``omw-sites demo build | run | map | serve | top | profiles`` (and the
families in ``omw_sites.commands``: ingest and validate, scoring, reports, db, site and
apikey). Every command reports a problem the same way (:mod:`omw_sites.commands.failure`)
and finds its store by one rule (:func:`omw_sites.config.store_target`)."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from omw_sites.commands.failure import EXIT_ERROR, fail, no_traceback, print_error, reported
from omw_sites.commands.options import StoreOpt, resolve_store
from omw_sites.config import get_settings
from omw_sites.store import InventoryError, StoreError


class _App(typer.Typer):
    """The command line. A store or inventory error that escapes a command's own handling
    is still one line and exit code 2, never a traceback."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except (StoreError, InventoryError) as exc:
            print_error(exc)
            sys.exit(EXIT_ERROR)


app = _App(
    help="omw-sites: inventory and ranking of investment land for the Warsaw metropolitan area.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
demo_app = typer.Typer(help="Synthetic OMW demo region.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
console = Console(stderr=True)
out = Console()


@demo_app.command("build")
def demo_build(
    parcels: Annotated[int, typer.Option(min=100, help="number of parcels")] = 20000,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same region)")] = 42,
    out_dir: Annotated[Path, typer.Option("--out", help="raw folder to write")] = Path(
        "data/raw/demo"
    ),
    tile_parcels: Annotated[
        int,
        typer.Option(
            min=100,
            help="most parcels per tile: above it a country of tiles is built (at most 16 tiles)",
        ),
    ] = 1_000_000,
) -> None:
    """Generate the synthetic OMW region as real raw formats (GPKG, GeoTIFF).

    With more parcels than --tile-parcels it builds a "country" of tiles instead.
    A tile is a complete synthetic region with its share of the parcels, its own
    seed (SEED + k) and voivodeship code (the first two TERYT digits), placed on a
    90 km grid in OUT/tile_<code>/. Tiles are built one at a time, so memory stays
    that of one tile. `omw-sites run` reads such a folder as it is."""
    from omw_sites.demo import build_region
    from omw_sites.demo.country import MAX_TILES, build_country, tile_sizes

    t0 = time.perf_counter()
    country = parcels > tile_parcels
    what = "country" if country else "region"
    with console.status(f"generating the demo {what}…") as status:

        def progress(stage: str, n: int) -> None:
            status.update(f"generating the demo {what}… {stage}")
            if "/" in stage:  # one stage of a country's tile: a line per tile is enough
                return
            took = f" [{time.perf_counter() - t0:.1f} s]" if country else ""
            console.print(f"  [green]✓[/] {stage:<14} {n:>10,}{took}")

        with reported(ValueError):
            if country:
                n_tiles = len(tile_sizes(parcels, tile_parcels))
                if n_tiles <= MAX_TILES:
                    console.print(f"{n_tiles} tiles of about {parcels // n_tiles:,} parcels")
                manifest = build_country(
                    out_dir, parcels, seed=seed, tile_parcels=tile_parcels, progress=progress
                )
            else:
                manifest = build_region(out_dir, parcels=parcels, seed=seed, progress=progress)
    n = manifest.get("parcels", parcels)
    console.print(
        f"demo {what}: {n:,} parcels (seed {seed}) in {out_dir} [{time.perf_counter() - t0:.1f} s]"
    )


@app.command()
def run(
    raw: Annotated[Path, typer.Option(help="raw data folder")] = Path("data/raw/demo"),
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="output folder: the inventory is OUT/omw_sites.gpkg unless --store or "
            "OMW_DATABASE_URL names another (without --out: OMW_STORE, "
            "default data/processed/omw_sites.gpkg)",
        ),
    ] = None,
    profile: Annotated[
        list[str] | None, typer.Option(help="profile name or TOML file (repeatable); default all")
    ] = None,
    top: Annotated[int, typer.Option(help="sites per profile in the summary")] = 10,
    store: StoreOpt = None,
    nominated: Annotated[
        Path | None,
        typer.Option(
            help="nomination list (CSV or XLSX: parcel_id; optional name, contact, "
            "price_pln_m2, notes): these parcels become candidates whatever their zoning"
        ),
    ] = None,
    allow_mass_end: Annotated[
        bool,
        typer.Option(
            "--allow-mass-end",
            help="write the update even if it ends more than a fifth of the current sites "
            "(refused otherwise: a wrong CRS or a partial dataset looks like that)",
        ),
    ] = False,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="run on Dask, one task per powiat: 'local' (worker processes on this "
            "machine) or a scheduler's address tcp://HOST:PORT whose workers see --raw "
            "at the same path; the same results as without it",
        ),
    ] = None,
    partition: Annotated[
        str, typer.Option(help="how a --scheduler run cuts the region (powiat)")
    ] = "powiat",
    workers: Annotated[int, typer.Option(min=1, help="worker processes of --scheduler local")] = 2,
    worker_memory: Annotated[
        str, typer.Option(help="memory limit per worker of --scheduler local (Dask: 4GB)")
    ] = "4GB",
    halo_km: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="how far around its powiat a partition reads the layers its nearest-"
            "feature distances come from (farther ones are left empty and named)",
        ),
    ] = 30.0,
) -> None:
    """Run the whole pipeline: ingest → sites → criteria → scores → inventory update.

    Only parcels are required; what cannot be measured without the other layers is
    listed at the end and left empty (no data), never guessed. With --scheduler the
    same run is spread over Dask workers, one task per powiat."""
    from omw_sites.pipeline import run as run_one
    from omw_sites.store import display_target

    run_pipeline: Callable[..., Any] = run_one
    if scheduler is not None:
        from omw_sites.partitioned import ClusterOptions, run_partitioned

        options = ClusterOptions(scheduler, workers, worker_memory, halo_km, partition)
        run_pipeline = functools.partial(run_partitioned, options=options)

    target = resolve_store(store, out_dir)
    t0 = time.perf_counter()
    stages = ["profiles", "ingest", "sites", "criteria", "scoring", "store"]
    if scheduler is not None:
        stages = ["profiles", "plan", "network", "partition", "sites", "criteria", "scoring"]
        stages.append("store")
    bar = Progress(
        TextColumn("[bold]{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = bar.add_task("pipeline", total=len(stages))

    done: list[str] = []

    def progress(stage: str, msg: str, n: int) -> None:
        console.print(f"  [green]✓[/] {stage:<9} {escape(msg)}", highlight=False, soft_wrap=True)
        if stage in stages:
            bar.update(task, description=stage, completed=stages.index(stage))
            done.append(stage)

    def stage_now() -> str:  # the stage after the last one done
        i = stages.index(done[-1]) + 1 if done else 0
        return f"the {stages[i]} stage" if i < len(stages) else ""

    with no_traceback(stage_now), reported(), bar:
        summary = run_pipeline(
            raw,
            profiles=profile or None,
            progress=progress,
            top_n=top,
            store=target,
            nominated=nominated,
            allow_mass_end=allow_mass_end,
        )
    for p in summary.profiles:
        if p.name in summary.exclusions:  # an empty table is never the answer
            out.print(
                f"no eligible site for profile {p.name!r}; excluded, by the first "
                "constraint each site fails:",
                highlight=False,
            )
            for reason, count in summary.exclusions[p.name].items():
                out.print(f"  {count:>8,}  {escape(reason)}", highlight=False)
            continue
        table = Table(title=f"Top {top} — {p.title} (profile {p.name}, hash {p.hash})")
        for col in ("rank", "site", "gmina", "area ha", "zoning", "score"):
            table.add_column(
                col, justify="right" if col in ("rank", "area ha", "score") else "left"
            )
        for row in summary.top[p.name].itertuples(index=False):
            table.add_row(str(row[5]), row[0], row[1], f"{row[2]:.2f}", row[3], f"{row[4]:.3f}")
        out.print(table)
    if summary.notes:
        console.print("[bold]data gaps and notes[/] (also in the store's run_info):")
        for line in summary.notes:
            console.print(f"  [yellow]![/] {escape(line)}", highlight=False, soft_wrap=True)
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in summary.stage_seconds.items())
    console.print(
        f"[bold]done[/]: {summary.parcels:,} parcels → {summary.sites:,} sites, "
        f"{summary.quarantined:,} quarantined; {len(summary.profiles)} profiles; "
        f"store {display_target(summary.store)}; {time.perf_counter() - t0:.1f} s ({timing}); "
        f"peak {summary.peak_rss_mb:,.0f} MB",
        highlight=False,
    )


@app.command("map")
def map_cmd(
    profile: Annotated[list[str] | None, typer.Option(help="profile (repeatable)")] = None,
    all_profiles: Annotated[bool, typer.Option("--all", help="every profile in the store")] = False,
    store: StoreOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the HTML maps")] = Path(
        "data/processed/maps"
    ),
    compare: Annotated[
        tuple[str, str] | None,
        typer.Option(help="two profiles A B: a map of where their rankings differ"),
    ] = None,
    sheets: Annotated[
        int, typer.Option(min=0, help="sheets beside the maps: each profile's best N sites")
    ] = 10,
) -> None:
    """Write offline HTML maps (one per profile, plus an index), or a comparison map."""
    store = resolve_store(store)
    from omw_sites.maps import write_maps

    if compare:
        a, b = compare
        from omw_sites.maps import load_map_data, write_comparison, write_index

        with reported(ValueError):  # English and Polish, as the profile maps
            written = write_comparison(store, a, b, out_dir)
        for path in [*written, *write_index(out_dir, load_map_data(store))]:
            console.print(f"  [green]✓[/] {path}")
        return
    if not profile and not all_profiles:
        fail("give --profile NAME (repeatable), --all or --compare A B")
    with reported(ValueError):
        paths = write_maps(store, out_dir, None if all_profiles else profile, sheets=sheets)
    for p in paths:
        console.print(f"  [green]✓[/] {p}")


@app.command()
def serve(
    store: StoreOpt = None,
    host: Annotated[str | None, typer.Option(help="address to bind")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
) -> None:
    """Serve the GeoJSON / OGC API Features API and the maps with uvicorn."""
    from omw_sites.api import serve as serve_api
    from omw_sites.store import display_target, open_inventory

    settings = get_settings()
    store = resolve_store(store)
    with reported():
        if not open_inventory(store).has_sites():
            fail(f"store {display_target(store)} holds no sites; run `omw-sites run`")
    host, port = host or settings.host, port or settings.port
    console.print(f"serving {display_target(store)} on http://{host}:{port}/ (Ctrl-C to stop)")
    with reported():
        serve_api(store, host, port)


@app.command()
def top(
    profile: Annotated[str, typer.Option(help="profile")] = "logistics",
    n: Annotated[int, typer.Option(help="how many")] = 10,
    store: StoreOpt = None,
) -> None:
    """Print the best sites of a profile from the store."""
    store = resolve_store(store)
    from omw_sites.layers import rank_col, score_col
    from omw_sites.store import read_sites

    with reported():
        sites = read_sites(store, read_geometry=False)
    r = rank_col(profile)
    if r not in sites:
        names = sorted(c[5:] for c in sites.columns if c.startswith("rank_"))
        fail(f"profile {profile!r} not in the store; it has: {', '.join(names)}")
    best = sites[sites[r] > 0].sort_values(r).head(n)
    if best.empty:  # an empty table is never the answer: say what excluded them
        _print_exclusions(sites, profile)
        return
    table = Table(title=f"Top {n} — {profile}")
    for col in ("rank", "site", "gmina", "area ha", "zoning", "score"):
        table.add_column(col)
    for row in best.itertuples():
        table.add_row(
            str(getattr(row, r)),
            row.site_id,
            row.gmina,
            f"{row.area_ha:.2f}",
            row.zoning_symbol,
            f"{getattr(row, score_col(profile)):.3f}",
        )
    out.print(table)


def _print_exclusions(sites, profile: str) -> None:
    """How many sites each constraint of ``profile`` excluded (the first one each fails)."""
    from omw_sites.layers import excluded_col

    if sites.empty:
        out.print(f"no sites in the store for profile {profile!r}; run `omw-sites run`")
        return
    col = excluded_col(profile)
    reasons = sites[col].fillna("").astype(str) if col in sites else None
    out.print(f"no eligible site for profile {profile!r} among {len(sites):,} sites.")
    if reasons is None or not (reasons != "").any():
        out.print("the store holds no exclusion reasons for this profile")
        return
    out.print("sites excluded, by the first constraint each fails:")
    for reason, count in reasons[reasons != ""].value_counts().items():
        out.print(f"  {count:>8,}  {escape(reason)}", highlight=False)


@app.command()
def profiles() -> None:
    """List the built-in investor profiles with their criteria and weights."""
    from omw_sites.scoring import load_profiles

    for p in load_profiles():
        weights = ", ".join(f"{c.name} {c.weight:.0%}" for c in p.criteria)
        out.print(f"[bold]{p.name}[/] — {p.title} (hash {p.hash}): {weights}", highlight=False)


from omw_sites.commands import db as _db_commands  # noqa: E402
from omw_sites.commands import enquiring as _enquiring_commands  # noqa: E402
from omw_sites.commands import fetching as _fetching_commands  # noqa: E402
from omw_sites.commands import ingesting as _ingesting_commands  # noqa: E402
from omw_sites.commands import ranking as _ranking_commands  # noqa: E402
from omw_sites.commands import reporting as _reporting_commands  # noqa: E402

_ingesting_commands.register(app)
_db_commands.register(app)
_ranking_commands.register(app)
_reporting_commands.register(app)
_enquiring_commands.register(app)
_fetching_commands.register(app)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
