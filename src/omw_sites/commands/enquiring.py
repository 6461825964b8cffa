"""Investor enquiries: ``enquiry add|list|show|history|match|answer|offer|status|summary``.

An enquiry is recorded from a TOML/JSON file or options, matched against the current
sites (shortlist balanced across gminy, near misses, why), answered site by site by the
gminy, sent as an offer pack and tracked to its end."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from omw_sites.commands.failure import fail, reported
from omw_sites.commands.options import StoreOpt, resolve_store
from omw_sites.files import write_text_atomic

console = Console(stderr=True)
out = Console(width=200)

enquiry_app = typer.Typer(
    help="Investor enquiries: record, match, gminy's answers, offer pack, tracking.",
    no_args_is_help=True,
)

ByOpt = Annotated[str, typer.Option(help="who makes the change (kept in the history)")]
LangOpt = Annotated[str, typer.Option(help="pl | en")]
_LIMIT = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(<=|>=)\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$")


def _inventory(store: str | None):
    from omw_sites.store import open_inventory

    return open_inventory(resolve_store(store))


def _read_file(path: Path) -> dict[str, Any]:
    """An enquiry file (TOML, or JSON by its ``.json`` suffix) as a table."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"{path}: cannot read the enquiry file ({exc.strerror or exc})")
    except UnicodeDecodeError:
        fail(f"{path}: the enquiry file is not UTF-8 text")
    try:
        doc = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        fail(f"{path}: cannot parse the enquiry file: {exc}")
    if not isinstance(doc, dict):
        fail(f"{path}: the enquiry file must hold a table (code_name, requirements, …)")
    return doc


def _limits(items: list[str]) -> dict[str, dict[str, float]]:
    limits: dict[str, dict[str, float]] = {}
    for item in items:
        found = _LIMIT.match(item)
        if not found:
            fail(f"--limit {item!r}: write CRITERION<=NUMBER or CRITERION>=NUMBER")
        name, op, number = found.groups()
        limits.setdefault(name, {})["max" if op == "<=" else "min"] = float(number)
    return limits


def _weights(items: list[str]) -> dict[str, float]:
    weights = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            fail(f"--weight {item!r}: write CRITERION=NUMBER, e.g. time_junction_min=40")
    return weights


def _merge(doc: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The file's table with the options given on the command line over it."""
    req = dict(doc.get("requirements") or {})
    for key, value in given.pop("requirements").items():
        if key == "limits":
            req["limits"] = {**(req.get("limits") or {}), **value}
        else:
            req[key] = value
    prefs = dict(doc.get("preferences") or {})
    prefs.update(given.pop("preferences"))
    merged = {**doc, **given}
    if req:
        merged["requirements"] = req
    if prefs:
        merged["preferences"] = prefs
    return merged


@enquiry_app.command("add")
def add(
    by: ByOpt,
    file: Annotated[
        Path | None, typer.Argument(help="enquiry file (TOML or .json); options override it")
    ] = None,
    code_name: Annotated[str | None, typer.Option(help="the investor's code name")] = None,
    sector: Annotated[str | None, typer.Option(help="sector, e.g. logistics")] = None,
    deadline: Annotated[str | None, typer.Option(help="answer by (YYYY-MM-DD)")] = None,
    contact: Annotated[
        str | None, typer.Option(help="the investor's contact (confidential, never published)")
    ] = None,
    min_area: Annotated[float | None, typer.Option(help="smallest area, ha")] = None,
    max_area: Annotated[float | None, typer.Option(help="largest area, ha")] = None,
    profile: Annotated[
        str | None, typer.Option(help="investor profile whose constraints must pass")
    ] = None,
    limit: Annotated[
        list[str] | None,
        typer.Option(
            help="hard limit CRITERION<=N or >=N (repeatable), e.g. time_junction_min<=10"
        ),
    ] = None,
    zoning: Annotated[list[str] | None, typer.Option(help="allowed designation class")] = None,
    ownership: Annotated[list[str] | None, typer.Option(help="allowed ownership class")] = None,
    status: Annotated[
        list[str] | None, typer.Option(help="allowed status (available, reserved)")
    ] = None,
    max_price: Annotated[float | None, typer.Option(help="highest price, PLN/m²")] = None,
    rank_by: Annotated[
        str | None, typer.Option(help="profile that ranks the sites (default --profile)")
    ] = None,
    weight: Annotated[
        list[str] | None, typer.Option(help="preferred weight CRITERION=N (repeatable)")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Record an investor enquiry (status new) from a file and/or options."""
    doc = _read_file(file) if file is not None else {}
    limits = _limits(limit or [])
    if min_area is not None or max_area is not None:
        limits["area_ha"] = {
            k: v for k, v in (("min", min_area), ("max", max_area)) if v is not None
        }
    req: dict[str, Any] = {"limits": limits} if limits else {}
    for key, value in (
        ("profile", profile),
        ("zoning_classes", zoning),
        ("ownership", ownership),
        ("statuses", status),
        ("max_price_pln_m2", max_price),
    ):
        if value:
            req[key] = value
    prefs: dict[str, Any] = {"profile": rank_by} if rank_by else {}
    if weight:
        prefs["weights"] = _weights(weight)
    given = {
        k: v
        for k, v in (
            ("code_name", code_name),
            ("sector", sector),
            ("deadline", deadline),
            ("contact", contact),
        )
        if v is not None
    }
    doc = _merge(doc, {**given, "requirements": req, "preferences": prefs})
    from omw_sites.store import InventoryError, enquiries

    try:
        rec = enquiries.add(_inventory(store), doc, by)
    except InventoryError as exc:
        fail(f"{file}: {exc}" if file is not None and exc.status == 422 else exc)
    except (OSError, ValueError) as exc:
        fail(exc)
    console.print(f"enquiry {rec['enquiry_id']} ({escape(str(rec['code_name']))}) recorded: new")
    out.print(rec["enquiry_id"], highlight=False)


@enquiry_app.command("list")
def list_(
    status: Annotated[str | None, typer.Option(help="only enquiries with this status")] = None,
    store: StoreOpt = None,
) -> None:
    """Enquiries, newest first (never the investors' contacts)."""
    from omw_sites.store import enquiries

    with reported(ValueError):
        rows = enquiries.listing(_inventory(store), status)
    table = Table(title=f"Enquiries ({len(rows)})")
    for col in rows.columns:
        table.add_column(col)
    for row in rows.itertuples(index=False):
        table.add_row(*("" if v is None or v != v else escape(str(v)) for v in row))
    out.print(table)


@enquiry_app.command("show")
def show(
    enquiry: Annotated[str, typer.Argument(help="enquiry ID, e.g. E0001")],
    with_contact: Annotated[
        bool, typer.Option("--with-contact", help="also the investor's confidential contact")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """One enquiry as JSON (its public view unless --with-contact)."""
    from omw_sites.store import enquiries

    with reported(ValueError):
        rec = enquiries.get(_inventory(store), enquiry)
    rec.pop("fid", None)
    shown = rec if with_contact else enquiries.public_view(rec)
    out.print_json(json.dumps(shown, ensure_ascii=False, default=str))


@enquiry_app.command("history")
def history(
    enquiry: Annotated[str, typer.Argument(help="enquiry ID")],
    store: StoreOpt = None,
) -> None:
    """Every change of one enquiry, oldest first."""
    from omw_sites.store import enquiries

    with reported(ValueError):
        rows = enquiries.history(_inventory(store), enquiry)
    table = Table(title=f"History of {enquiry}")
    cols = ["changed_at", "kind", "site_id", "field", "old_value", "new_value", "source"]
    for col in cols:
        table.add_column(col)
    for row in rows[cols].itertuples(index=False):
        table.add_row(*("" if v is None or v != v else escape(str(v)[:80]) for v in row))
    out.print(table)


def _print_match(result: Any, lang: str) -> None:
    from omw_sites.scoring.matching import shortfall_text, site_lines

    table = Table(title=f"Shortlist ({len(result.shortlist)} of {result.candidates} candidates)")
    for col in ("#", "site", "gmina", "ha", "score", "why it fits / uncertain"):
        table.add_column(col, justify="right" if col in ("#", "ha", "score") else "left")
    for item in result.shortlist:
        lines = site_lines(item, lang)
        words = "\n".join([*lines["fits"], *("? " + u for u in lines["uncertain"])])
        score = "" if item["score"] is None else f"{item['score']:.3f}"
        table.add_row(
            str(item["position"]),
            item["site_id"],
            f"{escape(item['gmina'])} ({item['teryt']})",
            f"{item['area_ha']:.2f}",
            score,
            escape(words),
        )
    out.print(table)
    near = Table(title=f"Near misses ({len(result.near_misses)})")
    for col in ("#", "site", "gmina", "fails", "by"):
        near.add_column(col)
    for item in result.near_misses:
        lines = site_lines(item, lang)
        near.add_row(
            str(item["position"]),
            item["site_id"],
            f"{escape(item['gmina'])} ({item['teryt']})",
            escape("; ".join(lines["missing"])),
            escape(shortfall_text(item, lang)),
        )
    out.print(near)


@enquiry_app.command("match")
def match(
    enquiry: Annotated[str, typer.Argument(help="enquiry ID")],
    by: ByOpt,
    cap_per_gmina: Annotated[
        int | None, typer.Option(min=1, help="most sites per gmina on the shortlist")
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="most sites on the shortlist")] = 10,
    near: Annotated[int, typer.Option(min=0, help="most near misses listed")] = 10,
    lang: LangOpt = "pl",
    store: StoreOpt = None,
) -> None:
    """Match an enquiry against the current sites; stored on it (status matched)."""
    from omw_sites.reports.balance import balanced_shortlist
    from omw_sites.scoring.matching import match as match_sites
    from omw_sites.scoring.matching import parse_preferences, parse_requirements
    from omw_sites.store import enquiries

    if lang not in ("pl", "en"):
        fail(f"--lang {lang!r}: pl or en")
    with reported(ValueError):
        inv = _inventory(store)
        rec = enquiries.get(inv, enquiry)
        req = parse_requirements(rec["requirements"] or {})
        prefs = parse_preferences(rec["preferences"], req)
        sites = inv.read_sites(read_geometry=False)
        result = match_sites(
            sites, req, prefs, top=top, cap=cap_per_gmina, near=near, spread=balanced_shortlist
        )
        enquiries.record_match(inv, enquiry, result, by)
    _print_match(result, lang)
    console.print(f"enquiry {enquiry}: matched")


@enquiry_app.command("answer")
def answer(
    enquiry: Annotated[str, typer.Argument(help="enquiry ID")],
    site: Annotated[str, typer.Option(help="shortlisted site ID")],
    by: ByOpt,
    confirm: Annotated[
        bool | None,
        typer.Option("--confirm/--withdraw", help="available for this offer, or withdrawn from it"),
    ] = None,
    price: Annotated[float | None, typer.Option(help="price for this offer, PLN/m²")] = None,
    contact: Annotated[str | None, typer.Option(help="the gmina's contact for it")] = None,
    gmina: Annotated[
        str | None, typer.Option(help="TERYT of the gmina answering (must hold the site)")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """A gmina's answer for one shortlisted site (a history row)."""
    from omw_sites.store import enquiries

    if confirm is None:
        fail("say --confirm (available for this offer) or --withdraw (withdrawn from it)")
    if gmina is not None and not (gmina.isdigit() and len(gmina) == 7):
        fail(f"--gmina {gmina!r}: a gmina TERYT code has 7 digits (e.g. 1418043)")
    with reported(ValueError):
        row = enquiries.answer(
            _inventory(store),
            enquiry,
            site,
            bool(confirm),
            by,
            price=price,
            contact=contact,
            gminy=frozenset([gmina]) if gmina else None,
        )
    console.print(f"enquiry {enquiry}, site {site}: {row['answer']}")


@enquiry_app.command("offer")
def offer(
    enquiry: Annotated[str, typer.Argument(help="enquiry ID")],
    by: ByOpt,
    lang: LangOpt = "pl",
    pdf: Annotated[
        bool, typer.Option("--pdf", help="also print one PDF (headless Chromium)")
    ] = False,
    store: StoreOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the pack")] = Path(
        "data/processed/offers"
    ),
) -> None:
    """The offer pack in the investor's language: cover, comparison, map, site sheets."""
    from omw_sites.reports.offer_pack import write_offer_pack
    from omw_sites.store import InventoryError, enquiries

    target = resolve_store(store)
    with reported(ValueError, RuntimeError):
        inv = _inventory(target)
        rec = enquiries.get(inv, enquiry)
        if rec["status"] not in enquiries.OFFERABLE:
            msg = (
                f"enquiry {enquiry} is {rec['status']}: match it first (`omw-sites enquiry match`)"
            )
            raise InventoryError(msg, "status", status=409)
        paths, offered = write_offer_pack(target, enquiry, out_dir, lang=lang, pdf=pdf)
        enquiries.mark_offered(inv, enquiry, offered, by)
    for p in paths.values():
        console.print(f"  [green]✓[/] {p}", highlight=False)
    console.print(f"enquiry {enquiry}: sent with {len(offered)} site(s)")


@enquiry_app.command("status")
def status(
    enquiry: Annotated[str, typer.Argument(help="enquiry ID")],
    new: Annotated[str, typer.Argument(help="site_visit | won | lost | withdrawn")],
    by: ByOpt,
    reason: Annotated[
        str | None, typer.Option(help="why (required for won/lost/withdrawn)")
    ] = None,
    site: Annotated[str | None, typer.Option(help="with won: the site the investor chose")] = None,
    store: StoreOpt = None,
) -> None:
    """Move an enquiry on: site visit, won, lost or withdrawn, with the reason."""
    from omw_sites.store import enquiries

    with reported(ValueError):
        rec = enquiries.set_status(_inventory(store), enquiry, new, by, reason=reason, site=site)
    console.print(f"enquiry {enquiry}: {rec['status']}")


@enquiry_app.command("summary")
def summary(
    since: Annotated[str | None, typer.Option(help="enquiries made since (YYYY-MM-DD)")] = None,
    store: StoreOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the CSV")] = Path(
        "data/processed/reports"
    ),
) -> None:
    """Per gmina: how often its sites were shortlisted, offered, chosen; the requirement
    its near misses failed most often."""
    from omw_sites.store import enquiries

    with reported(ValueError):
        rows = enquiries.summary(_inventory(store), since)
    table = Table(title="Enquiries per gmina" + (f" since {since}" if since else ""))
    for col in rows.columns:
        table.add_column(col, justify="right" if rows[col].dtype.kind in "iu" else "left")
    for row in rows.itertuples(index=False):
        table.add_row(*(escape(str(v)) for v in row))
    out.print(table)
    path = write_text_atomic(Path(out_dir) / "enquiry_summary.csv", rows.to_csv(index=False))
    console.print(f"  [green]✓[/] {path}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``enquiry`` commands to the main app."""
    app.add_typer(enquiry_app, name="enquiry")
