"""`omw-sites` commands of the scoring stage: ``score``, ``compare``, ``ahp``, ``stability``."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from omw_sites.commands.failure import fail, reported
from omw_sites.commands.options import StoreOpt, resolve_store

console = Console(stderr=True)
out = Console(width=200)


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _read(store: str):
    from omw_sites.store import read_run_info, read_sites

    with reported():
        return read_sites(store), read_run_info(store)


def _rewrite(store: str, sites, info: dict[str, Any], what: str) -> None:
    """Write the new score columns back to the inventory (one transaction; the measured
    attributes are unchanged, so only scores are refreshed) as a run of its own."""
    import uuid

    from omw_sites.store import open_inventory

    info = {**info, "run_id": uuid.uuid4().hex[:12], "created": _now(), "command": what}
    open_inventory(store).apply(sites, run_info=info, source=f"cli:{what}")


def _load(profile: str):
    from omw_sites.scoring import load_profiles

    return load_profiles([profile])[0]


def score(
    profile: Annotated[str, typer.Option(help="profile name or TOML file")],
    method: Annotated[
        str | None, typer.Option(help="wlc | topsis | vikor | promethee2 (default: profile's)")
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="TOML/JSON weights {criterion = weight} or AHP matrix")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--as", help="scenario name for the columns (default: profile[_method])"),
    ] = None,
    segments: Annotated[
        str | None, typer.Option(help="also cluster eligible sites: kmeans | gmm")
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed for --segments")] = 0,
    top: Annotated[int, typer.Option(help="sites to print")] = 10,
    store: StoreOpt = None,
) -> None:
    """Score the store's sites with a profile (optionally another method or weights)."""
    store = resolve_store(store)
    import numpy as np

    from omw_sites.layers import rank_col, score_col
    from omw_sites.scoring.engine import drivers_col, score_profile
    from omw_sites.scoring.profiles import load_weights_file
    from omw_sites.scoring.segments import DEFAULT_FEATURES, segment_sites

    with reported():
        prof = _load(profile)
        if method:
            prof = prof.with_method(method)
        if weights:
            prof = prof.with_weights(load_weights_file(weights), str(weights))
    scen = name or (prof.name if not (method or weights) else _scenario(prof.name, method, weights))
    sites, info = _read(store)
    with reported(ValueError):
        res = score_profile(sites, _renamed(prof, scen))
    sites = sites.drop(columns=[c for c in res.columns if c in sites.columns])
    sites = sites.join(res)
    extra = {}
    if segments:
        eligible = sites[rank_col(scen)].to_numpy() > 0
        feats = list(prof.segment_features) or DEFAULT_FEATURES
        with reported(ValueError):
            seg = segment_sites(sites[eligible], feats, method=segments, seed=seed)
        label = np.full(len(sites), -1)
        label[eligible] = seg.labels
        words = np.array([seg.descriptions.get(int(x), "") for x in label], dtype=object)
        sites[f"segment_{scen}"] = label
        sites[f"segment_words_{scen}"] = words.astype(str)
        extra["segments"] = {
            "method": seg.method,
            "k": seg.k,
            "scores": seg.scores,
            "descriptions": seg.descriptions,
            "sizes": seg.sizes,
        }
    ran = _now()
    entry = _profile_entry(prof, scen, ran) | extra
    info = dict(info)
    info["profiles"] = [p for p in info.get("profiles", []) if p.get("name") != scen] + [entry]
    with reported(ValueError):
        _rewrite(store, sites, info, f"score {scen}")
    best = sites[sites[rank_col(scen)] > 0].sort_values(rank_col(scen)).head(top)
    table = Table(title=f"Top {top} — {prof.title} [{scen}: {prof.method}, hash {prof.hash}]")
    for col in ("rank", "site", "gmina", "area ha", "score", "drivers"):
        table.add_column(col)
    for _, row in best.iterrows():
        table.add_row(
            str(row[rank_col(scen)]),
            str(row["site_id"]),
            escape(str(row["gmina"])),
            f"{row['area_ha']:.2f}",
            f"{row[score_col(scen)]:.3f}",
            escape(str(row[drivers_col(scen)])),
        )
    out.print(table)
    n_ok = int((sites[rank_col(scen)] > 0).sum())
    console.print(f"scored {len(sites):,} sites, {n_ok:,} eligible; wrote {scen} to {store}")
    if segments:
        for k, text in seg.descriptions.items():
            console.print(f"  segment {k}: {escape(text)} ({seg.sizes[k]:,})")


def _scenario(base: str, method: str | None, weights: Path | None) -> str:
    parts = [base] + ([method] if method else []) + ([Path(weights).stem] if weights else [])
    return "_".join(parts).replace("-", "_").replace(" ", "_")


def _renamed(prof, scen: str):
    from dataclasses import replace

    return prof if scen == prof.name else replace(prof, name=scen)


def _profile_entry(prof, scen: str, ran: str) -> dict[str, Any]:
    title = prof.title if scen == prof.name else f"{prof.title} ({scen})"
    return prof.record() | {"name": scen, "profile": prof.name, "title": title, "scored_at": ran}


def compare(
    a: Annotated[str, typer.Argument(help="scenario/profile A (reference)")],
    b: Annotated[str, typer.Argument(help="scenario/profile B")],
    movers: Annotated[int, typer.Option(help="how many movers to list")] = 10,
    store: StoreOpt = None,
) -> None:
    """Compare two rankings in the store: Spearman ρ, WS coefficient and the biggest movers."""
    store = resolve_store(store)
    from omw_sites.layers import rank_col
    from omw_sites.scoring.sensitivity import compare_rankings
    from omw_sites.store import read_sites

    with reported():
        sites = read_sites(store, read_geometry=False)
    have = sorted(c[5:] for c in sites.columns if c.startswith("rank_"))
    for s in (a, b):
        if rank_col(s) not in sites:
            fail(f"no ranking {s!r} in {store}; it has: {', '.join(have)}")
    with reported(ValueError):
        cmp = compare_rankings(
            sites["site_id"].to_numpy(), sites[rank_col(a)], sites[rank_col(b)], movers
        )
    out.print(
        f"{a} → {b}: Spearman ρ = {cmp.spearman:.4f}, WS = {cmp.ws:.4f} on {cmp.common:,} sites "
        f"ranked in both; {cmp.only_a:,} only in {a}, {cmp.only_b:,} only in {b}",
        highlight=False,
    )
    table = Table(title=f"biggest movers ({a} → {b}; + = better in {b})")
    for col in ("site", f"rank {a}", f"rank {b}", "change"):
        table.add_column(col)
    for row in cmp.movers.itertuples(index=False):
        table.add_row(str(row.site_id), str(row.rank_a), str(row.rank_b), f"{row.change:+d}")
    out.print(table)


def ahp_cmd(
    file: Annotated[Path, typer.Argument(help="TOML/JSON with matrix = [[…]] and order = […]")],
) -> None:
    """AHP weights of a pairwise matrix: weights, λmax, CI, CR and advice (exit 1 if CR > 0.1)."""
    from omw_sites.scoring.weights import ahp

    if not file.exists():
        fail(f"{file}: file not found")
    try:
        text = file.read_text(encoding="utf-8")
        doc = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        fail(f"{file}: cannot parse: {exc}")
    doc = doc.get("weights", doc)
    matrix = doc.get("matrix", doc.get("pairwise_matrix"))
    if matrix is None and isinstance(doc.get("inputs"), dict):
        matrix = doc["inputs"].get("pairwise_matrix")
    names = doc.get("order") or doc.get("criteria")
    if matrix is None:
        fail(f"{file}: no matrix = [[…]] found")
    try:
        res = ahp(matrix, names)
    except (ValueError, TypeError) as exc:
        fail(f"{file}: {exc}")
    labels = names or [f"#{i + 1}" for i in range(res.n)]
    table = Table(title=f"AHP weights — {file.name}")
    table.add_column("criterion")
    table.add_column("weight", justify="right")
    for lab, w in zip(labels, res.weights, strict=True):
        table.add_row(escape(str(lab)), f"{w:.4f}")
    out.print(table)
    out.print(
        f"λmax = {res.lambda_max:.4f}, CI = {res.ci:.4f}, RI = {res.ri:.2f}, CR = {res.cr:.4f}",
        highlight=False,
    )
    out.print(escape(res.advice()), highlight=False)
    if not res.consistent:
        raise typer.Exit(code=1)


def stability(
    profile: Annotated[str, typer.Option(help="profile (or scenario) in the store")],
    draws: Annotated[int, typer.Option(min=10, help="Monte Carlo weight draws")] = 1000,
    top: Annotated[int, typer.Option(min=1, help="N of P(top N)")] = 10,
    concentration: Annotated[
        float, typer.Option(help="Dirichlet concentration (higher = smaller perturbation)")
    ] = 100.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    store: StoreOpt = None,
) -> None:
    """Rank stability under weight uncertainty: rank p5–p95 and P(top N) per site."""
    store = resolve_store(store)
    import numpy as np

    from omw_sites.layers import rank_col
    from omw_sites.scoring.engine import evaluate_profile, on_offer
    from omw_sites.scoring.sensitivity import rank_stability

    sites, info = _read(store)
    entry: dict[str, Any] = next(
        (p for p in info.get("profiles", []) if p.get("name") == profile), {}
    )
    with reported():
        prof = _load(entry.get("profile", profile))
        if entry.get("weights") and entry.get("hash") != prof.hash:
            prof = prof.with_weights(entry["weights"], f"store {profile}")
        if entry.get("method") and entry["method"] != prof.method:
            prof = prof.with_method(entry["method"])
    ev = evaluate_profile(sites, prof)
    # sold and withdrawn sites are in no ranking (see scoring.engine.score_profile)
    eligible = ev.eligible & on_offer(sites.get("status"), len(sites))
    if eligible.sum() < 2:
        fail(f"profile {profile!r}: fewer than two eligible sites")
    method = prof.method if prof.method in ("wlc", "topsis", "vikor") else "wlc"
    st = rank_stability(
        ev.values[eligible], ev.weights, draws, top, concentration, seed, method, prof.vikor_v
    )
    cols = {
        f"stab_p5_{profile}": st.p5,
        f"stab_p95_{profile}": st.p95,
        f"stab_ptop_{profile}": np.round(st.p_top, 4),
    }
    for c, vals in cols.items():
        full = np.zeros(len(sites), dtype=float if "ptop" in c else np.int64)
        full[eligible] = vals
        sites[c] = full
    info = dict(info)
    info.setdefault("stability", {})
    info["stability"] = dict(info["stability"]) | {
        profile: {
            "draws": draws,
            "top_n": top,
            "concentration": concentration,
            "seed": seed,
            "method": method,
            "profile_hash": entry.get("hash", prof.hash),
            "run_at": _now(),
        }
    }
    with reported(ValueError):
        _rewrite(store, sites, info, f"stability {profile}")
    r = rank_col(profile)
    view = sites[eligible].copy()
    if r in view:
        view = view.sort_values(r)
    else:
        view = view.sort_values(f"stab_p5_{profile}")
    table = Table(
        title=f"rank stability — {profile} ({draws} draws, concentration {concentration:g})"
    )
    for col in ("site", "rank", "rank p5–p95", f"P(top {top})"):
        table.add_column(col)
    for _, row in view.head(max(top, 10)).iterrows():
        table.add_row(
            str(row["site_id"]),
            str(row[r]) if r in view else "",
            f"{row[f'stab_p5_{profile}']}–{row[f'stab_p95_{profile}']}",
            f"{row[f'stab_ptop_{profile}']:.2f}",
        )
    out.print(table)
    console.print(f"wrote stab_p5/p95/ptop_{profile} for {int(eligible.sum()):,} sites to {store}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the main app."""
    app.command("score")(score)
    app.command("compare")(compare)
    app.command("ahp")(ahp_cmd)
    app.command("stability")(stability)
