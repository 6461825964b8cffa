"""Regional balance: supply of investment land per gmina, inequality, a balanced shortlist.

The store's site table is summarised per gmina (TERYT + name): sites and hectares by
readiness tier and by ownership, best and median score, and the gmina's share of the
region's top-N. Inequality is the Gini coefficient of top-N land (ha) and of top-N site
counts across gminy, plus the core city's share.

The **balanced shortlist** picks K sites greedily, best first, under a rule that spreads
them across gminy:

* every eligible site (``rank_<p> > 0``) starts with its score;
* once a gmina already holds ``m`` shortlisted sites, its next site competes with
  ``score × decay**m`` (a diminishing-returns bonus for gminy not yet served;
  ``decay = 1`` switches it off);
* a gmina holding ``cap`` sites takes no more (``cap = None``: no cap);
* at each step the highest adjusted score wins; ties go to the better rank, then to the
  lower site ID — the result is deterministic.

With ``decay = 1`` and no cap the rule returns the plain top-K. Reads the store only.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omw_sites.files import write_text_atomic
from omw_sites.i18n import LANGUAGES as LANGS
from omw_sites.i18n import N_, gettext
from omw_sites.layers import rank_col, score_col
from omw_sites.reports.formatting import date_text, fixed, profile_title
from omw_sites.reports.templating import render

CORE_TERYT = "1465011"  # m.st. Warszawa
TIERS = ("A", "B", "C")
OWNERSHIP = ("municipal", "state", "private", "other")


def tier_col(profile: str) -> str:
    return f"tier_{profile}"


# --------------------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------------------


def gini(values: Any) -> float:
    """Gini coefficient of non-negative values (0 = equal, → 1 = all in one unit).

    Uses the mean-absolute-difference form ``Σ_i Σ_j |x_i − x_j| / (2 n² x̄)``, computed
    from the sorted values in O(n log n). Zero when there are fewer than two values or the
    total is zero.

    Parameters
    ----------
    values : array-like of non-negative numbers (e.g. hectares per gmina, zeros included)
    """
    x = np.sort(np.asarray(values, dtype=float).ravel())
    if np.isnan(x).any() or (x < 0).any():
        msg = "gini needs non-negative numbers without NaN"
        raise ValueError(msg)
    n, total = len(x), x.sum()
    if n < 2 or total <= 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def _check_profile(sites: pd.DataFrame, profile: str) -> None:
    if rank_col(profile) not in sites or score_col(profile) not in sites:
        names = sorted(c[5:] for c in sites.columns if c.startswith("rank_"))
        msg = f"profile {profile!r} is not in the store; it has: {', '.join(names) or 'none'}"
        raise ValueError(msg)


def _eligible_order(sites: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Eligible sites, best first (rank, then site ID)."""
    rank = sites[rank_col(profile)].fillna(0).astype(int)
    el = sites.loc[rank > 0].copy()
    el["_rank"] = rank[rank > 0]
    return el.sort_values(["_rank", "site_id"], kind="mergesort")


def plain_top(sites: pd.DataFrame, profile: str, k: int) -> pd.DataFrame:
    """The ``k`` best eligible sites of ``profile`` (rank order, ties by site ID)."""
    _check_profile(sites, profile)
    return _eligible_order(sites, profile).head(k).drop(columns="_rank")


def balanced_shortlist(
    sites: pd.DataFrame,
    profile: str,
    k: int,
    cap: int | None = None,
    decay: float = 1.0,
) -> pd.DataFrame:
    """The best ``k`` eligible sites under a per-gmina cap and a diminishing-returns bonus.

    Parameters
    ----------
    sites : site table with ``teryt``, ``site_id``, ``score_<p>``, ``rank_<p>``
    profile : profile name
    k : shortlist length
    cap : most sites per gmina (None: no cap)
    decay : a gmina's next site competes with ``score × decay**m`` after ``m`` picks there
        (0 < decay ≤ 1; 1 = no bonus)

    Returns
    -------
    pandas.DataFrame
        The chosen rows of ``sites`` in pick order, with ``pick`` (1..) and
        ``adjusted_score`` columns. Shorter than ``k`` when the cap leaves too few sites.
    """
    _check_profile(sites, profile)
    if k < 1:
        msg = f"k must be at least 1 (got {k})"
        raise ValueError(msg)
    if cap is not None and cap < 1:
        msg = f"cap must be at least 1 (got {cap})"
        raise ValueError(msg)
    if not 0 < decay <= 1:
        msg = f"decay must be in (0, 1] (got {decay})"
        raise ValueError(msg)
    order = _eligible_order(sites, profile)
    score = order[score_col(profile)].to_numpy(float)
    rank = order["_rank"].to_numpy(int)
    ids = order["site_id"].astype(str).to_numpy()
    queues: dict[str, list[int]] = {}
    for pos, t in enumerate(order["teryt"].astype(str).to_numpy()):
        queues.setdefault(t, []).append(pos)  # each queue is in rank order
    heads = dict.fromkeys(queues, 0)
    picked: list[int] = []
    adjusted: list[float] = []
    while len(picked) < k:
        best: tuple[float, int, str] | None = None
        best_gmina = None
        for t, queue in queues.items():
            m = heads[t]
            if m >= len(queue) or (cap is not None and m >= cap):
                continue
            pos = queue[m]
            key = (-score[pos] * decay**m, rank[pos], ids[pos])
            if best is None or key < best:
                best, best_gmina = key, t
        if best is None or best_gmina is None:  # both are set together
            break
        pos = queues[best_gmina][heads[best_gmina]]
        heads[best_gmina] += 1
        picked.append(pos)
        adjusted.append(-best[0])
    out = order.iloc[picked].drop(columns="_rank").copy()
    out["pick"] = np.arange(1, len(out) + 1)
    out["adjusted_score"] = np.round(adjusted, 6)
    return out


def gmina_supply(
    sites: pd.DataFrame,
    profile: str,
    top_n: int,
    gminy: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Supply of investment land per gmina under one profile (one row per gmina).

    Columns: ``teryt``, ``gmina``, ``sites``, ``ha``, ``eligible_sites``, ``eligible_ha``,
    ``sites_tier_A`` … ``ha_tier_C`` (readiness tier), ``sites_<ownership>`` and
    ``ha_<ownership>``, ``best_score``, ``median_score`` (eligible sites, 0..1),
    ``top_sites``, ``top_ha`` (in the region's top-N), ``top_share_sites`` and
    ``top_share_ha`` (share of the region's top-N, 0..1); where the store holds
    ``segment_<profile>`` (``omw-sites score --segments``) also ``sites_segment_<k>`` and
    ``ha_segment_<k>``. Gminy of ``gminy`` (a frame with
    ``teryt`` and ``name``) with no sites appear with zeros so inequality counts them.
    """
    _check_profile(sites, profile)
    s = pd.DataFrame(
        {
            "teryt": sites["teryt"].astype(str).to_numpy(),
            "gmina": sites["gmina"].astype(str).to_numpy(),
            "ha": sites["area_ha"].astype(float).to_numpy(),
            "score": sites[score_col(profile)].astype(float).to_numpy(),
            "eligible": sites[rank_col(profile)].fillna(0).to_numpy() > 0,
            "tier": (
                sites[tier_col(profile)].fillna("").astype(str).to_numpy()
                if tier_col(profile) in sites
                else ""
            ),
            "ownership": sites["ownership"].fillna("other").astype(str).to_numpy(),
        }
    )
    s.loc[~s["ownership"].isin(OWNERSHIP), "ownership"] = "other"
    top_ids = set(plain_top(sites, profile, top_n)["site_id"].astype(str))
    s["top"] = sites["site_id"].astype(str).isin(top_ids).to_numpy()

    names = s.groupby("teryt")["gmina"].first()
    if gminy is not None and len(gminy):
        ref = pd.Series(gminy["name"].astype(str).to_numpy(), index=gminy["teryt"].astype(str))
        names = pd.concat([names, ref[~ref.index.isin(names.index)]])
    out = pd.DataFrame({"teryt": names.index, "gmina": names.to_numpy()}).set_index("teryt")
    g = s.groupby("teryt")
    out["sites"] = g.size()
    out["ha"] = g["ha"].sum()
    out["eligible_sites"] = g["eligible"].sum()
    out["eligible_ha"] = s[s["eligible"]].groupby("teryt")["ha"].sum()
    breakdowns: list[tuple[str, Any]] = [("tier", TIERS), ("ownership", OWNERSHIP)]
    seg_col = f"segment_{profile}"
    if seg_col in sites:  # data-driven segments of `omw-sites score --segments`
        seg = pd.to_numeric(sites[seg_col], errors="coerce").to_numpy()
        s["segment"] = np.where(np.isnan(seg), -1, seg).astype(int)
        breakdowns.append(("segment", sorted(v for v in set(s["segment"]) if v >= 0)))
    for by, values in breakdowns:
        counts = s.pivot_table(index="teryt", columns=by, values="ha", aggfunc=["size", "sum"])
        for v in values:
            label = f"tier_{v}" if by == "tier" else f"segment_{v}" if by == "segment" else v
            out[f"sites_{label}"] = counts["size"][v] if ("size", v) in counts else 0
            out[f"ha_{label}"] = counts["sum"][v] if ("sum", v) in counts else 0.0
    el = s[s["eligible"]].groupby("teryt")["score"]
    out["best_score"] = el.max()
    out["median_score"] = el.median()
    out["top_sites"] = s[s["top"]].groupby("teryt").size()
    out["top_ha"] = s[s["top"]].groupby("teryt")["ha"].sum()
    count_cols = [c for c in out.columns if c.startswith("sites") or c.endswith("_sites")]
    ha_cols = [c for c in out.columns if c.startswith("ha") or c.endswith("_ha")]
    out[count_cols] = out[count_cols].fillna(0).astype(int)
    out[ha_cols] = out[ha_cols].fillna(0.0).astype(float).round(4)
    n_top, ha_top = out["top_sites"].sum(), out["top_ha"].sum()
    out["top_share_sites"] = (out["top_sites"] / n_top).round(4) if n_top else 0.0
    out["top_share_ha"] = (out["top_ha"] / ha_top).round(4) if ha_top else 0.0
    out["best_score"] = out["best_score"].round(6)
    out["median_score"] = out["median_score"].round(6)
    out = out.reset_index().sort_values(["top_ha", "ha", "teryt"], ascending=[False, False, True])
    return out.reset_index(drop=True)


def shortlist_summary(
    shortlist: pd.DataFrame,
    profile: str,
    all_teryt: list[str],
    core_teryt: str = CORE_TERYT,
) -> dict[str, Any]:
    """Spread of one shortlist: gminy covered, Gini of ha and of counts, core share, score.

    Gini runs over ``all_teryt`` (gminy without a pick count as zero).
    """
    teryt = shortlist["teryt"].astype(str)
    ha = shortlist["area_ha"].astype(float).groupby(teryt).sum().reindex(all_teryt, fill_value=0)
    n = teryt.value_counts().reindex(all_teryt, fill_value=0)
    total_ha = float(ha.sum())
    scores = shortlist[score_col(profile)].astype(float)
    return {
        "sites": int(len(shortlist)),
        "ha": round(total_ha, 4),
        "gminy_covered": int((n > 0).sum()),
        "gini_ha": round(gini(ha.to_numpy()), 4),
        "gini_sites": round(gini(n.to_numpy()), 4),
        "core_share_ha": round(float(ha.get(core_teryt, 0.0)) / total_ha, 4) if total_ha else 0.0,
        "core_share_sites": round(float(n.get(core_teryt, 0)) / len(shortlist), 4)
        if len(shortlist)
        else 0.0,
        "mean_score": round(float(scores.mean()), 6) if len(scores) else float("nan"),
    }


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------


@dataclass
class BalanceReport:
    """Everything the balance report shows; ``table`` is the tidy per-gmina frame."""

    profile: str
    profile_title: str
    k: int
    top_n: int
    cap: int | None
    decay: float
    table: pd.DataFrame  # one row per gmina
    plain: pd.DataFrame  # plain top-K (site_id, teryt, gmina, area_ha, score, rank)
    balanced: pd.DataFrame  # balanced top-K in pick order
    summary: dict[str, dict[str, Any]]  # {"plain": …, "balanced": …, "region": …}
    data_date: str = ""
    run_id: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def score_lost(self) -> float:
        """Mean score of the plain top-K minus that of the balanced one (≥ 0)."""
        return round(
            self.summary["plain"]["mean_score"] - self.summary["balanced"]["mean_score"], 6
        )


def _short(df: pd.DataFrame, profile: str) -> pd.DataFrame:
    cols = ["site_id", "teryt", "gmina", "area_ha", score_col(profile), rank_col(profile)]
    extra = [c for c in ("pick", "adjusted_score") if c in df]
    out = df[cols + extra].copy()
    return out.rename(columns={score_col(profile): "score", rank_col(profile): "rank"}).reset_index(
        drop=True
    )


def regional_balance(
    sites: pd.DataFrame,
    profile: str,
    k: int,
    cap: int | None = None,
    decay: float = 0.8,
    top_n: int | None = None,
    gminy: pd.DataFrame | None = None,
    core_teryt: str = CORE_TERYT,
    run_info: dict[str, Any] | None = None,
) -> BalanceReport:
    """Per-gmina supply, inequality and the balanced vs plain top-K for one profile.

    Parameters
    ----------
    sites : site table (geometry not needed)
    profile : profile name (``score_<p>``/``rank_<p>`` must be in ``sites``)
    k : shortlist length
    cap : most sites per gmina in the balanced shortlist (None: no cap)
    decay : diminishing-returns factor per site already picked in a gmina (1 = off)
    top_n : size of the region's top-N for the supply shares (default ``k``)
    gminy : reference gminy (``teryt``, ``name``) so gminy without sites count as zeros
    core_teryt : TERYT of the core city (m.st. Warszawa)
    run_info : the store's run info (profile title, data dates)
    """
    top_n = top_n or k
    table = gmina_supply(sites, profile, top_n, gminy)
    plain = plain_top(sites, profile, k)
    balanced = balanced_shortlist(sites, profile, k, cap=cap, decay=decay)
    all_teryt = table["teryt"].tolist()
    for name, df in (("plain", plain), ("balanced", balanced)):
        t = df["teryt"].astype(str)
        table[f"{name}_k_sites"] = table["teryt"].map(t.value_counts()).fillna(0).astype(int)
        ha = df["area_ha"].astype(float).groupby(t).sum()
        table[f"{name}_k_ha"] = table["teryt"].map(ha).fillna(0.0).round(4)
    region = {
        "gminy": len(table),
        "gminy_with_sites": int((table["sites"] > 0).sum()),
        "gminy_with_eligible": int((table["eligible_sites"] > 0).sum()),
        "sites": int(table["sites"].sum()),
        "ha": round(float(table["ha"].sum()), 4),
        "gini_top_ha": round(gini(table["top_ha"].to_numpy()), 4),
        "gini_top_sites": round(gini(table["top_sites"].to_numpy()), 4),
        "gini_eligible_ha": round(gini(table["eligible_ha"].to_numpy()), 4),
        "core_share_top_ha": float(
            table.loc[table["teryt"] == core_teryt, "top_share_ha"].sum().round(4)
        ),
        "core_share_top_sites": float(
            table.loc[table["teryt"] == core_teryt, "top_share_sites"].sum().round(4)
        ),
    }
    summary = {
        "region": region,
        "plain": shortlist_summary(plain, profile, all_teryt, core_teryt),
        "balanced": shortlist_summary(balanced, profile, all_teryt, core_teryt),
    }
    info = run_info or {}
    title = next(
        (p.get("title", profile) for p in info.get("profiles", []) if p.get("name") == profile),
        profile,
    )
    dates = info.get("data_dates", {})
    notes = []
    if len(balanced) < k:
        notes.append(
            f"the cap of {cap} per gmina leaves only {len(balanced)} of the {k} sites asked for"
        )
    return BalanceReport(
        profile=profile,
        profile_title=title,
        k=k,
        top_n=top_n,
        cap=cap,
        decay=decay,
        table=table,
        plain=_short(plain, profile),
        balanced=_short(balanced, profile),
        summary=summary,
        data_date=str(dates.get("parcels", "")),
        run_id=str(info.get("run_id", "")),
        notes=notes,
    )


def balance_from_store(
    store: str | Path,
    profile: str,
    k: int,
    cap: int | None = None,
    decay: float = 0.8,
    top_n: int | None = None,
) -> BalanceReport:
    """:func:`regional_balance` on the store's site table and gminy layer."""
    from omw_sites.store import list_layers, read_layer, read_run_info, read_sites

    sites = read_sites(store, read_geometry=False)
    gminy = None
    if "gminy" in list_layers(store):
        gminy = pd.DataFrame(read_layer(store, "gminy", read_geometry=False))
    return regional_balance(
        sites, profile, k, cap, decay, top_n, gminy, run_info=read_run_info(store)
    )


# --------------------------------------------------------------------------------------
# Output: chart, CSV, HTML
# --------------------------------------------------------------------------------------


def balance_chart(report: BalanceReport, lang: str = "en", max_gminy: int = 25) -> bytes:
    """PNG bar chart: hectares of the plain vs balanced top-K per gmina (matplotlib, Agg),
    its words in ``lang``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    tab = report.table
    tab = tab[(tab["plain_k_ha"] > 0) | (tab["balanced_k_ha"] > 0)]
    tab = tab.sort_values(
        ["plain_k_ha", "balanced_k_ha", "teryt"], ascending=[False, False, True]
    ).head(max_gminy)
    y = np.arange(len(tab))
    title = profile_title(report.profile, report.profile_title, lang)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(tab) + 1.6), dpi=110)
    try:
        plain = gettext(lang, "plain top-%(k)s", k=report.k)
        ax.barh(y - 0.2, tab["plain_k_ha"], height=0.4, label=plain, color="#888")
        balanced = gettext(lang, "balanced")
        ax.barh(y + 0.2, tab["balanced_k_ha"], height=0.4, label=balanced, color="#2b7bba")
        ax.set_yticks(y, [f"{g} ({c})" for g, c in zip(tab["gmina"], tab["teryt"], strict=True)])
        ax.invert_yaxis()
        ax.set_xlabel(gettext(lang, "shortlisted land [ha]"))
        ax.set_title(gettext(lang, "%(title)s: top-%(k)s land per gmina", title=title, k=report.k))
        ax.xaxis.set_major_formatter(lambda v, _pos: fixed(v, lang, 0))
        ax.legend(loc="lower right")
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return buf.getvalue()


# column headings of the balance page (the CSV keeps the column names)
COLUMN_LABELS = {
    "teryt": N_("TERYT"),
    "gmina": N_("Gmina"),
    "site_id": N_("Site"),
    "sites": N_("Sites"),
    "ha": N_("Area"),
    "area_ha": N_("Area"),
    "eligible_sites": N_("Eligible sites"),
    "eligible_ha": N_("Eligible area"),
    "ha_tier_A": N_("Tier A area"),
    "ha_tier_B": N_("Tier B area"),
    "ha_tier_C": N_("Tier C area"),
    "ha_municipal": N_("Municipal land"),
    "ha_state": N_("State Treasury land"),
    "ha_private": N_("Private land"),
    "ha_other": N_("Other owners' land"),
    "best_score": N_("Best score (0–1)"),
    "median_score": N_("Median score (0–1)"),
    "score": N_("Score (0–1)"),
    "adjusted_score": N_("Balanced score (0–1)"),
    "rank": N_("Rank"),
    "pick": N_("Pick"),
    "top_sites": N_("Sites in the region's top-N"),
    "top_ha": N_("Area in the region's top-N"),
    "top_share_ha": N_("Share of top-N area"),
    "plain_k_sites": N_("Sites in plain top-K"),
    "balanced_k_sites": N_("Sites in balanced top-K"),
    "shortlist": N_("Shortlist"),
    "gminy_covered": N_("Gminy covered"),
    "gini_ha": N_("Gini of area (0–1)"),
    "gini_sites": N_("Gini of sites (0–1)"),
    "core_share_ha": N_("Core city share of area"),
    "core_share_sites": N_("Core city share of sites"),
    "mean_score": N_("Mean score (0–1)"),
}
UNIT_WORDS = {"ha": "ha", "share": "%"}


def _cell(v: Any, lang: str, digits: int = 2) -> str:
    if isinstance(v, float | np.floating):
        return fixed(v, lang, digits)
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        return fixed(v, lang, 0)
    return str(v)


def _table(
    df: pd.DataFrame, units: dict[str, str], digits: dict[str, int], lang: str
) -> dict[str, Any]:
    """Header cells (labels with units) and rows of formatted cells in ``lang``, for the
    template; shares are shown as per cent."""
    head = [
        (gettext(lang, COLUMN_LABELS[c]) if c in COLUMN_LABELS else c)
        + (f" [{UNIT_WORDS.get(units[c], units[c])}]" if units.get(c) else "")
        for c in df.columns
    ]
    df = df.assign(**{c: df[c] * 100 for c in df.columns if units.get(c) == "share"})
    digits = {**digits, **{c: 1 for c in df.columns if units.get(c) == "share"}}
    rows = [
        [_cell(v, lang, digits.get(c, 2)) for c, v in zip(df.columns, row, strict=True)]
        for row in df.itertuples(index=False)
    ]
    return {"head": head, "rows": rows}


SUPPLY_COLUMNS = [
    "teryt",
    "gmina",
    "sites",
    "ha",
    "eligible_sites",
    "eligible_ha",
    *[f"ha_tier_{x}" for x in TIERS],
    *[f"ha_{o}" for o in OWNERSHIP],
    "best_score",
    "median_score",
    "top_sites",
    "top_ha",
    "top_share_ha",
    "plain_k_sites",
    "balanced_k_sites",
]


def balance_html(report: BalanceReport, lang: str = "en") -> str:
    """A self-contained HTML report in ``lang`` (chart embedded as base64 PNG, no external
    resources)."""
    s = report.summary
    names = {
        "plain": gettext(lang, "plain top-%(k)s", k=report.k),
        "balanced": gettext(lang, "balanced"),
    }
    comparison = pd.DataFrame(
        [{"shortlist": names[name], **s[name]} for name in ("plain", "balanced")]
    )
    units = {"ha": "ha", "core_share_ha": "share", "core_share_sites": "share"}
    t_units = {
        c: "ha" for c in SUPPLY_COLUMNS if c == "ha" or c.startswith("ha_") or c.endswith("_ha")
    }
    t_units["top_share_ha"] = "share"
    digits = {"best_score": 3, "median_score": 3, "score": 3, "adjusted_score": 3}
    cmp_digits = {"mean_score": 3, "gini_ha": 3, "gini_sites": 3, "ha": 1}
    page = render(
        "balance.html.j2",
        lang,
        r=report,
        title=profile_title(report.profile, report.profile_title, lang),
        data_date=date_text(report.data_date, lang),
        region=s["region"],
        core_teryt=CORE_TERYT,
        chart=base64.b64encode(balance_chart(report, lang)).decode("ascii"),
        comparison=_table(comparison, units, cmp_digits, lang),
        balanced=_table(report.balanced, {"area_ha": "ha"}, digits, lang),
        supply=_table(report.table[SUPPLY_COLUMNS], t_units, digits, lang),
        other_lang=[
            (other, page_file(f"balance_{report.profile}", other))
            for other in LANGS
            if other != lang
        ],
    )
    return str(page)


def page_file(stem: str, lang: str) -> str:
    """The file name of a report page in ``lang``: ``<stem>.html`` in English,
    ``<stem>_pl.html`` in Polish (as the profile maps are named)."""
    return f"{stem}.html" if lang == "en" else f"{stem}_{lang}.html"


def write_balance(
    report: BalanceReport, out_dir: str | Path, langs: tuple[str, ...] = ("en", "pl")
) -> dict[str, Path]:
    """Write ``balance_<p>.csv`` (per gmina), ``balance_<p>_shortlist.csv`` and the HTML
    page in each language (``balance_<p>.html`` English, ``balance_<p>_pl.html`` Polish)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"balance_{report.profile}"
    paths = {"table": out / f"{stem}.csv", "shortlist": out / f"{stem}_shortlist.csv"}
    write_text_atomic(paths["table"], report.table.to_csv(index=False))
    plain = report.plain.assign(shortlist="plain", pick=np.arange(1, len(report.plain) + 1))
    short = pd.concat([plain, report.balanced.assign(shortlist="balanced")], ignore_index=True)
    write_text_atomic(paths["shortlist"], short.to_csv(index=False))
    for lang in langs:
        key = "html" if lang == "en" else f"html_{lang}"
        paths[key] = out / page_file(stem, lang)
        write_text_atomic(paths[key], balance_html(report, lang))
    return paths
