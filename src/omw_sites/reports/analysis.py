"""Analyst report: score distributions, rank stability, regional balance and servicing."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from omw_sites.i18n import gettext  # noqa: E402
from omw_sites.layers import rank_col, score_col  # noqa: E402
from omw_sites.reports.balance import balance_chart, balance_from_store, page_file  # noqa: E402
from omw_sites.reports.formatting import coded, date_text, fixed, profile_title  # noqa: E402
from omw_sites.reports.servicing import plan_extensions  # noqa: E402
from omw_sites.reports.templating import render  # noqa: E402
from omw_sites.scoring import load_profiles  # noqa: E402
from omw_sites.scoring.engine import evaluate_profile  # noqa: E402
from omw_sites.scoring.sensitivity import rank_stability  # noqa: E402
from omw_sites.store import read_run_info, read_sites  # noqa: E402


def _png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def score_distributions(sites: pd.DataFrame, profiles: list[str], lang: str = "en") -> plt.Figure:
    """Histogram of the eligible sites' scores, one panel per profile."""
    fig, axes = plt.subplots(1, len(profiles), figsize=(3.2 * len(profiles), 2.6), sharey=True)
    for ax, p in zip(np.atleast_1d(axes), profiles, strict=True):
        s = sites.loc[sites[rank_col(p)].fillna(0) > 0, score_col(p)].dropna()
        ax.hist(s, bins=20, range=(0, 1), color="#fd8d3c", edgecolor="#7f2704")
        n = fixed(len(s), lang, 0)
        ax.set_title(gettext(lang, "%(profile)s (%(n)s eligible)", profile=p, n=n), fontsize=9)
        ax.set_xlabel(gettext(lang, "score"))
        ax.xaxis.set_major_formatter(lambda v, _pos: fixed(v, lang, 1))
    np.atleast_1d(axes)[0].set_ylabel(gettext(lang, "sites"))
    return fig


def stability_figure(
    stab_p5: np.ndarray, stab_p95: np.ndarray, ranks: np.ndarray, lang: str = "en"
) -> plt.Figure:
    """Rank intervals (5th–95th percentile under weight uncertainty) of the best sites."""
    order = np.argsort(ranks)
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(order))
    ax.vlines(x, stab_p5[order], stab_p95[order], color="#3182bd", lw=3)
    ax.plot(x, ranks[order], "k.", label=gettext(lang, "rank"))
    ax.invert_yaxis()
    ax.set_xlabel(gettext(lang, "sites in rank order"))
    ax.set_ylabel(gettext(lang, "rank (p5–p95)"))
    ax.legend(loc="lower right", fontsize=8)
    return fig


def analysis_pages(
    store: str | Path,
    profile: str,
    k: int = 20,
    top: int = 30,
    draws: int = 500,
    langs: tuple[str, ...] = ("en", "pl"),
) -> dict[str, str]:
    """The analyst report of ``profile`` in each of ``langs`` (computed once): what an
    analyst looks at first.

    Score distributions of every profile in the store; rank intervals of the best ``top``
    sites under Dirichlet weight draws (``draws``, seeded); the regional balance of the
    top ``k`` (plain vs balanced shortlist); the ten utility extensions with the best value
    per PLN. Charts are embedded PNGs; nothing is loaded from the web.
    """
    prof = load_profiles([profile])[0]
    sites = read_sites(store, read_geometry=False)
    info = read_run_info(store)
    if rank_col(profile) not in sites:
        msg = f"profile {profile!r} is not scored in {store}"
        raise ValueError(msg)
    names = [p["name"] for p in info.get("profiles", []) if rank_col(p["name"]) in sites]
    ev = evaluate_profile(sites, prof)
    # the ranked sites: sold and withdrawn ones keep a score but have no rank
    eligible = np.flatnonzero(ev.eligible & (sites[rank_col(profile)].fillna(0) > 0).to_numpy())
    stab = rank_stability(ev.values[eligible], ev.weights, draws=draws, top_n=k, seed=0)
    ranks = sites[rank_col(profile)].to_numpy()[eligible]
    best = np.argsort(ranks)[:top]
    balance = balance_from_store(store, profile, k)
    plan = plan_extensions(sites, prof)
    best_sites = sites.iloc[eligible[best[:10]]]
    rows = zip(
        best_sites.iterrows(),
        stab.p5[best[:10]],
        stab.p95[best[:10]],
        stab.p_top[best[:10]],
        strict=True,
    )
    best_rows = [
        {
            "rank": int(r[rank_col(profile)]),
            "site_id": str(r["site_id"]),
            "gmina": str(r["gmina"]),
            "area_ha": r["area_ha"],
            "score": r[score_col(profile)],
            "p5": int(p5),
            "p95": int(p95),
            "p_top": ptop,
        }
        for (_, r), p5, p95, ptop in rows
    ]
    extensions = plan.table.head(10).to_dict("records")
    pages = {}
    for lang in langs:
        charts = {
            "distributions": _png(score_distributions(sites, names, lang)),
            "stability": _png(stability_figure(stab.p5[best], stab.p95[best], ranks[best], lang)),
            "balance": base64.b64encode(balance_chart(balance, lang)).decode(),
        }
        page = render(
            "analysis.html.j2",
            lang,
            title=profile_title(prof.name, prof.title, lang),
            run_id=str(info.get("run_id", "")),
            created=date_text(info.get("created", ""), lang),
            profile_hash=prof.hash,
            n_sites=len(sites),
            n_eligible=len(eligible),
            k=k,
            draws=draws,
            best=best_rows,
            balance=balance.summary,
            extensions=[{**x, "network": coded("network", x["network"], lang)} for x in extensions],
            charts=charts,
            other_lang=[
                (other, page_file(f"report_{Path(profile).stem}", other))
                for other in langs
                if other != lang
            ],
        )
        pages[lang] = str(page)
    return pages


def analysis_report(
    store: str | Path, profile: str, k: int = 20, top: int = 30, draws: int = 500, lang: str = "en"
) -> str:
    """The analyst report of ``profile`` in ``lang`` (see :func:`analysis_pages`)."""
    return analysis_pages(store, profile, k, top, draws, (lang,))[lang]
