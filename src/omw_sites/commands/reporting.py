"""`omw-sites` commands of the reports stage: ``balance``, ``sheet``, ``servicing``, ``report``.

The balance, servicing and analysis pages are written in English and Polish at once, named
as the profile maps are (``<name>.html`` English, ``<name>_pl.html`` Polish); a sheet is
one site in the language ``--lang`` asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from omw_sites.commands.failure import fail, reported
from omw_sites.commands.options import StoreOpt, resolve_store
from omw_sites.files import write_text_atomic
from omw_sites.i18n import LANGUAGES

console = Console(stderr=True)
out = Console(width=200)


def balance(
    profile: Annotated[str, typer.Option(help="profile scored in the store")],
    k: Annotated[int, typer.Option("--k", min=1, help="shortlist length")] = 20,
    cap: Annotated[
        int | None, typer.Option(min=1, help="most sites per gmina in the balanced shortlist")
    ] = None,
    decay: Annotated[
        float,
        typer.Option(help="score factor per site a gmina already holds (1 = no bonus)"),
    ] = 0.8,
    top_n: Annotated[
        int | None, typer.Option(help="region's top-N for supply shares and Gini (default K)")
    ] = None,
    store: StoreOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for CSV and HTML")] = Path(
        "data/processed/reports"
    ),
) -> None:
    """Regional balance: supply per gmina, Gini of top-N land, balanced vs plain top-K."""
    store = resolve_store(store)
    from omw_sites.reports.balance import balance_from_store, write_balance

    with reported(ValueError):
        report = balance_from_store(store, profile, k, cap=cap, decay=decay, top_n=top_n)
        paths = write_balance(report, out_dir)
    s = report.summary
    table = Table(title=f"Top {k} — {report.profile_title}: plain vs balanced")
    for col in ("shortlist", "sites", "ha", "gminy", "Gini ha", "Gini sites", "core ha", "score"):
        table.add_column(col, justify="left" if col == "shortlist" else "right")
    for name in ("plain", "balanced"):
        v = s[name]
        table.add_row(
            name,
            str(v["sites"]),
            f"{v['ha']:.1f}",
            str(v["gminy_covered"]),
            f"{v['gini_ha']:.3f}",
            f"{v['gini_sites']:.3f}",
            f"{100 * v['core_share_ha']:.1f} %",
            f"{v['mean_score']:.3f}",
        )
    out.print(table)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    console.print(
        f"mean score lost by balancing: {report.score_lost:.4f}; "
        f"Gini of top-{report.top_n} land across gminy {s['region']['gini_top_ha']:.3f}",
        highlight=False,
    )
    for p in paths.values():
        console.print(f"  [green]✓[/] {p}", highlight=False)


def sheet(
    site: Annotated[str, typer.Argument(help="site ID (e.g. S0123456789)")],
    lang: Annotated[str, typer.Option(help="pl | en")] = "pl",
    pdf: Annotated[
        bool, typer.Option("--pdf", help="also print a PDF (headless Chromium)")
    ] = False,
    store: StoreOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the sheet")] = Path(
        "data/processed/sheets"
    ),
) -> None:
    """Site sheet (karta terenu inwestycyjnego) as HTML, optionally PDF, in Polish or English."""
    store = resolve_store(store)
    from omw_sites.reports.sheet import write_sheet

    with reported(ValueError, RuntimeError):
        paths = write_sheet(store, site, out_dir, lang=lang, pdf=pdf)
    for p in paths.values():
        console.print(f"  [green]✓[/] {p}", highlight=False)


def servicing(
    profile: Annotated[str, typer.Option(help="built-in profile name or TOML file")],
    top: Annotated[int, typer.Option(min=1, help="extensions to print")] = 20,
    cost: Annotated[
        list[str] | None,
        typer.Option(help="cost per metre, NETWORK=PLN (repeatable), e.g. sewer=1300"),
    ] = None,
    min_gap: Annotated[float, typer.Option(help="shortest extension proposed (m)")] = 50.0,
    store: StoreOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the CSV")] = Path(
        "data/processed/reports"
    ),
) -> None:
    """Utility-investment plan: which network extensions unlock the most valuable land."""
    store = resolve_store(store)
    from omw_sites.reports.balance import page_file
    from omw_sites.reports.servicing import plan_from_store, servicing_map

    costs: dict[str, float] = {}
    for item in cost or []:
        net, _, value = item.partition("=")
        try:
            costs[net.strip()] = float(value)
        except ValueError:
            fail(f"--cost {item!r}: expected NETWORK=PLN per metre, e.g. sewer=1300")
    with reported(ValueError):
        plan = plan_from_store(store, profile, costs, min_gap)
    path = write_text_atomic(
        out_dir / f"servicing_{plan.profile}.csv", plan.table.to_csv(index=False)
    )
    map_paths = []
    if len(plan.table):  # the map in English and in Polish, named as the profile maps are
        for lang in LANGUAGES:
            map_path = out_dir / page_file(f"servicing_{plan.profile}", lang)
            write_text_atomic(map_path, servicing_map(store, plan, max(top, 200), lang))
            map_paths.append(map_path)
    table = Table(title=f"Utility extensions — {plan.profile}, best value per PLN first")
    heads = ("site", "gmina", "network", "m", "PLN", "score", "rank", "tier", "ha", "gain·ha/mPLN")
    for col in heads:
        table.add_column(col, justify="left" if col in ("site", "gmina", "network") else "right")
    for r in plan.table.head(top).itertuples():
        table.add_row(
            r.site_id,
            str(r.gmina),
            r.network,
            f"{r.length_m:,.0f}",
            f"{r.cost_pln:,.0f}",
            f"{r.score_before:.3f} → {r.score_after:.3f}",
            f"{r.rank_before} → {r.rank_after}",
            f"{r.tier_before} → {r.tier_after}",
            f"{r.area_ha:.1f}",
            f"{r.value_per_mpln:.2f}",
        )
    out.print(table)
    console.print(f"  [green]✓[/] {path} ({len(plan.table):,} candidate extensions)")
    for map_path in map_paths:
        console.print(f"  [green]✓[/] {map_path}")


def report(
    profile: Annotated[str, typer.Option(help="built-in profile name or TOML file")],
    k: Annotated[int, typer.Option("--k", min=1, help="top-K for balance and stability")] = 20,
    draws: Annotated[int, typer.Option(min=10, help="weight draws for rank stability")] = 500,
    store: StoreOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the report")] = Path(
        "data/processed/reports"
    ),
) -> None:
    """Static HTML analysis: score distributions, rank stability, balance, extensions."""
    store = resolve_store(store)
    from omw_sites.reports.analysis import analysis_pages
    from omw_sites.reports.balance import page_file

    with reported(ValueError):
        pages = analysis_pages(store, profile, k=k, draws=draws, langs=("en", "pl"))
    for lang, page in pages.items():  # named as the profile maps are
        path = write_text_atomic(out_dir / page_file(f"report_{Path(profile).stem}", lang), page)
        console.print(f"  [green]✓[/] {path}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the main app."""
    app.command("balance")(balance)
    app.command("sheet")(sheet)
    app.command("servicing")(servicing)
    app.command("report")(report)
