"""The main job: raw folder → canonical layers → sites → criteria → scores → store."""

from __future__ import annotations

import datetime as dt
import resource
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from omw_sites.criteria import measure_sites
from omw_sites.etl import load_raw
from omw_sites.layers import (
    REFERENCE_COLUMNS,
    REFERENCE_LAYERS,
    SITE_COLUMNS,
    STORE_FILE,
    column_source,
    rank_col,
    score_col,
)
from omw_sites.scoring import Profile, load_profiles, score_sites
from omw_sites.sites import assemble_sites, lineage, select_candidates
from omw_sites.store import ChangeReport, open_inventory, read_sites

Progress = Callable[[str, str, int], None]  # (stage, message, count)


@dataclass
class RunSummary:
    store: Path | str
    run_id: str
    parcels: int
    sites: int
    quarantined: int
    profiles: list[Profile]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    top: dict[str, pd.DataFrame] = field(default_factory=dict)
    changes: ChangeReport | None = None


def _previous_sites(store: Path | str) -> gpd.GeoDataFrame | None:
    """Current sites of the store being updated (for lineage), or None."""
    try:
        return read_sites(store, columns=["site_id"])
    except Exception:  # no store yet, or an unreadable one: no lineage
        return None


def run(
    raw_dir: str | Path,
    out_dir: str | Path,
    profiles: list[str] | None = None,
    profile_dir: Path | None = None,
    progress: Progress | None = None,
    top_n: int = 10,
    store: str | Path | None = None,
    scope: list[str] | None = None,
) -> RunSummary:
    """Run the whole pipeline and bring the inventory up to date.

    The inventory is ``store`` (a GeoPackage path or ``postgresql://`` URL), by default
    ``<out_dir>/omw_sites.gpkg``. Profiles are validated before any data is read; any error
    (missing layer, no CRS, unreadable file, bad profile) raises before the store is
    touched, and the update is one transaction (:meth:`Inventory.apply`), so a failed run
    leaves the previous inventory intact. ``scope`` limits the update to those gminy
    (TERYT): their sites are added, changed or ended; the others only re-scored.
    """
    say = progress or (lambda stage, msg, n: None)
    times: dict[str, float] = {}
    t = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal t
        now = time.perf_counter()
        times[stage] = round(now - t, 3)
        t = now

    profs = load_profiles(profiles, profile_dir)
    lap("profiles")
    say("profiles", ", ".join(p.name for p in profs), len(profs))

    raw = load_raw(raw_dir, progress=lambda key, n: say("ingest", key, n))
    parcels = raw["parcels"]
    lap("ingest")
    say(
        "ingest",
        f"{len(parcels):,} parcels; {len(raw.quarantine):,} records quarantined",
        len(parcels),
    )

    cand = select_candidates(parcels, raw["zoning"], raw.get("plan_zones"))
    sites = assemble_sites(cand)
    store = store if store is not None else Path(out_dir) / STORE_FILE
    sites["derived_from"] = lineage(sites, _previous_sites(store))
    lap("sites")
    multi = int((sites["n_parcels"] > 1).sum())
    say(
        "sites",
        f"{len(sites):,} sites ({multi:,} assembled from several parcels) "
        f"from {len(cand):,} candidate parcels of {len(parcels):,}",
        len(sites),
    )

    sites = measure_sites(sites, raw)
    lap("criteria")
    say("criteria", f"{len(SITE_COLUMNS)} criteria measured", len(sites))

    scored = gpd.GeoDataFrame(score_sites(sites, profs), geometry="geometry", crs=sites.crs)
    lap("scoring")
    for p in profs:
        say("scoring", f"{p.name}: {(scored[rank_col(p.name)] > 0).sum():,} eligible", len(scored))

    run_id = uuid.uuid4().hex[:12]
    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    reference = {
        k: raw.layers[k][[*REFERENCE_COLUMNS[k], "geometry"]]
        for k in REFERENCE_LAYERS
        if k in raw.layers
    }
    info = {
        "run_id": run_id,
        "created": created,
        "raw_dir": str(Path(raw_dir).resolve()),
        "profiles": [p.record() for p in profs],
        "data_dates": raw.data_dates,
        "units": {c: u for c, (u, _) in SITE_COLUMNS.items()},
        "columns": {
            c: {
                "unit": u,
                "meaning": m,
                "sources": list(column_source(c)),
                "data_date": max((raw.data_dates.get(k, "") for k in column_source(c)), default=""),
            }
            for c, (u, m) in SITE_COLUMNS.items()
        },
        "counts": {"parcels": len(parcels), "sites": len(scored)},
        "ingest": raw.stats,
    }
    changes = open_inventory(store).apply(
        scored, reference, info, raw.quarantine, scope=scope, source=f"run:{run_id}"
    )
    lap("store")
    say(
        "store",
        f"{changes.added:,} added, {changes.changed:,} changed, {changes.ended:,} ended, "
        f"{changes.unchanged:,} unchanged, {len(changes.merged):,} duplicates merged",
        len(scored),
    )

    top = {}
    for p in profs:
        r = rank_col(p.name)
        ranked = scored[scored[r] > 0].sort_values(r).head(top_n)
        zoning = ranked["zoning_symbol"].where(
            ranked["zoning_symbol"] != "", ranked["plan_zone"] + " (plan ogólny)"
        )
        top[p.name] = pd.DataFrame(
            {
                "site_id": ranked["site_id"],
                "gmina": ranked["gmina"],
                "area_ha": ranked["area_ha"],
                "zoning": zoning,
                "score": ranked[score_col(p.name)],
                "rank": ranked[r],
            }
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return RunSummary(
        store=store,
        run_id=run_id,
        parcels=len(parcels),
        sites=len(scored),
        quarantined=len(raw.quarantine),
        profiles=profs,
        stage_seconds=times,
        peak_rss_mb=round(peak, 1),
        top=top,
        changes=changes,
    )
