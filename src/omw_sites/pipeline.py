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

from omw_sites.config import store_target
from omw_sites.criteria.measure import Coverage, measure
from omw_sites.etl import IngestError, load_raw
from omw_sites.etl.nominations import Nominations, read_nominations
from omw_sites.layers import (
    REFERENCE_COLUMNS,
    REFERENCE_LAYERS,
    SITE_COLUMNS,
    SITE_NO_DATA,
    STORE_FILE,
    column_source,
    rank_col,
    score_col,
)
from omw_sites.scoring import Profile, load_profiles, score_sites
from omw_sites.sites import (
    assemble_sites,
    lineage,
    nomination_offers,
    select_candidates,
    why_no_candidates,
)
from omw_sites.store import ChangeReport, open_inventory, read_sites
from omw_sites.store.base import StagedSites

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
    # what this run could not measure or apply, one line per cause (also in run_info)
    notes: list[str] = field(default_factory=list)
    # per profile with no eligible site: sites excluded by each constraint (first failed)
    exclusions: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class Measured:
    """What a run has measured, ready for scoring and the store: the sites (with their
    offers and lineage) and what ``run_info`` records of the input."""

    sites: gpd.GeoDataFrame
    coverage: Coverage
    notes: list[str]
    reference: dict[str, gpd.GeoDataFrame]  # the store's reference layers
    n_parcels: int
    data_dates: dict[str, str]
    absent: dict[str, str]
    stats: dict[str, dict[str, int]]
    files: list[dict]
    quarantine: pd.DataFrame
    nominated: dict | None = None  # run_info['nominated']
    extra_info: dict = field(default_factory=dict)  # more run_info entries
    # the sites' measured columns and shapes, staged beside a PostGIS store by the
    # processes that measured them (a partitioned run); ``sites`` then has no shapes
    staged: StagedSites | None = None


def previous_sites(store: Path | str) -> gpd.GeoDataFrame | None:
    """Current sites of the store being updated (for lineage), or None."""
    try:
        return read_sites(store, columns=["site_id"])
    except Exception:  # no store yet, or an unreadable one: no lineage
        return None


def run(
    raw_dir: str | Path,
    out_dir: str | Path | None = None,
    profiles: list[str] | None = None,
    profile_dir: Path | None = None,
    progress: Progress | None = None,
    top_n: int = 10,
    store: str | Path | None = None,
    scope: list[str] | None = None,
    nominated: str | Path | None = None,
    allow_mass_end: bool = False,
) -> RunSummary:
    """Run the whole pipeline and bring the inventory up to date.

    The inventory is ``store`` (a GeoPackage path or ``postgresql://`` URL), by default
    ``<out_dir>/omw_sites.gpkg``, or without ``out_dir`` the settings' store
    (:func:`omw_sites.config.store_target`). Profiles are validated before any data is
    read; any error (missing layer, no CRS, unreadable file, bad profile) raises before
    the store is touched, and the update is one transaction (:meth:`Inventory.apply`),
    so a failed run leaves the previous inventory intact. ``scope`` limits the update to those gminy
    (TERYT): their sites are added, changed or ended; the others only re-scored.

    Only parcels are required: a criterion whose layer is missing or empty is left
    unmeasured (NaN), each profile's weights are renormalised over the criteria that
    were measured, and a constraint is not applied where its data is missing — all said
    in ``RunSummary.notes`` and ``run_info``. ``nominated`` is a nomination list (CSV or
    XLSX with ``parcel_id``; see :mod:`omw_sites.etl.nominations`): its parcels become
    candidates whatever their zoning, and new sites carry its offer. A run that finds
    no candidate parcel stops with an :class:`IngestError` saying why, before the store.
    """
    say = progress or (lambda stage, msg, n: None)
    lap = Laps()
    profs, nominations, offered = prepare(profiles, profile_dir, nominated, say, lap)

    raw = load_raw(raw_dir, progress=lambda key, n: say("ingest", key, n))
    parcels = raw["parcels"]
    lap("ingest")
    say(
        "ingest",
        f"{len(parcels):,} parcels; {len(raw.quarantine):,} records quarantined",
        len(parcels),
    )
    notes = list(raw.notes)  # the absent layers are named by the criteria they leave empty

    cand = select_candidates(parcels, raw.get("zoning"), raw.get("plan_zones"), nominated=offered)
    sites = assemble_sites(cand)
    notes += _nomination_notes(nominations, parcels, sites)
    if not len(sites):
        why = why_no_candidates(
            parcels,
            raw.get("zoning"),
            raw.get("plan_zones"),
            nominated_listed=len(nominations) if nominations else 0,
            nominated_found=int(cand["nominated"].sum()) if len(cand) else 0,
            candidates=len(cand),
        )
        raise IngestError(Path(raw_dir), f"no candidate sites: {why}", rule="candidate parcels")
    if store is None:
        store = Path(out_dir) / STORE_FILE if out_dir is not None else store_target()
    sites["derived_from"] = lineage(sites, previous_sites(store))
    lap("sites")
    multi = int((sites["n_parcels"] > 1).sum())
    say(
        "sites",
        f"{len(sites):,} sites ({multi:,} assembled from several parcels) "
        f"from {len(cand):,} candidate parcels of {len(parcels):,}",
        len(sites),
    )

    sites, coverage = measure(sites, raw)
    sites = with_offers(sites, nominations)
    measured = Measured(
        sites,
        coverage,
        notes,
        {k: raw.layers[k][[*REFERENCE_COLUMNS[k], "geometry"]] for k in REFERENCE_LAYERS
         if k in raw.layers},
        len(parcels),
        raw.data_dates,
        dict(raw.absent),
        raw.stats,
        raw.files,
        raw.quarantine,
    )  # fmt: skip
    if nominations is not None:
        measured.nominated = {
            "file": str(nominations.path),
            "listed": len(nominations),
            "not_found": sorted(nominations.ids - set(parcels["parcel_id"])),
        }
    lap("criteria")
    return finish(measured, profs, store, raw_dir, say, lap, scope, allow_mass_end, top_n)


class Laps:
    """Seconds per stage of a run, each from the end of the one before."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.start = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.times[stage] = round(now - self.start, 3)
        self.start = now


def prepare(
    profiles: list[str] | None,
    profile_dir: Path | None,
    nominated: str | Path | None,
    say: Progress,
    lap: Laps,
) -> tuple[list[Profile], Nominations | None, dict[str, str]]:
    """What a run checks before it reads any data: the profiles, the nomination list,
    and the nominated parcels (ID -> offer name)."""
    profs = load_profiles(profiles, profile_dir)
    nominations = read_nominations(nominated) if nominated is not None else None
    offered = (
        dict(zip(nominations.frame["parcel_id"], nominations.frame["name"], strict=True))
        if nominations
        else {}
    )
    lap("profiles")
    say("profiles", ", ".join(p.name for p in profs), len(profs))
    return profs, nominations, offered


def with_offers(sites: gpd.GeoDataFrame, nominations: Nominations | None) -> gpd.GeoDataFrame:
    """Measured sites with the nomination list's offers, without the ``nominated`` flag."""
    if nominations is not None:
        offers = nomination_offers(sites, nominations.frame)
        sites = sites.assign(**{c: offers[c] for c in offers.columns})
    return sites.drop(columns=["nominated"], errors="ignore")


def finish(
    measured: Measured,
    profs: list[Profile],
    store: Path | str,
    raw_dir: str | Path,
    say: Progress,
    lap: Laps,
    scope: list[str] | None = None,
    allow_mass_end: bool = False,
    top_n: int = 10,
) -> RunSummary:
    """Score the measured sites, bring the store up to date, summarise: the part of a
    run after measurement, the same for one process and a partitioned run."""
    sites, coverage, notes = measured.sites, measured.coverage, list(measured.notes)
    notes += coverage.lines()
    said = "\n".join(notes)
    notes += [f"{key}: {why}" for key, why in measured.absent.items() if why not in said]
    n_done = len(SITE_COLUMNS) - len(coverage.not_measured)
    say("criteria", f"{n_done} of {len(SITE_COLUMNS)} criteria measured", len(sites))

    scoring_notes: dict[str, dict] = {}
    # sites the store holds as sold or withdrawn are not ranked (their scores are kept)
    status = open_inventory(store).statuses(sites["site_id"])
    scored = score_sites(sites, profs, notes=scoring_notes, status=status)
    scored = scored.drop(columns=[SITE_NO_DATA])
    if measured.staged is None:
        scored = gpd.GeoDataFrame(scored, geometry="geometry", crs=sites.crs)
    lap("scoring")
    for p in profs:
        say("scoring", f"{p.name}: {(scored[rank_col(p.name)] > 0).sum():,} eligible", len(scored))
    notes += _scoring_lines(scoring_notes)

    run_id = uuid.uuid4().hex[:12]
    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    # an empty layer replaces the store's copy too: the store shows this run's data
    reference = measured.reference
    data_dates = measured.data_dates
    info = {
        "run_id": run_id,
        "created": created,
        "raw_dir": str(Path(raw_dir).resolve()),
        "profiles": [p.record() for p in profs],
        "data_dates": data_dates,
        "units": {c: u for c, (u, _) in SITE_COLUMNS.items()},
        "columns": {
            c: {
                "unit": u,
                "meaning": m,
                "sources": list(column_source(c)),
                "data_date": max((data_dates.get(k, "") for k in column_source(c)), default=""),
                # why the column is empty for every site in this run ("" when measured)
                "no_data": coverage.not_measured.get(c, ""),
            }
            for c, (u, m) in SITE_COLUMNS.items()
        },
        "counts": {"parcels": measured.n_parcels, "sites": len(scored)},
        "ingest": measured.stats,
        "absent_layers": dict(measured.absent),
        "files": measured.files,  # what each file of the raw folder became
        "no_data": coverage.record(),
        "scoring": scoring_notes,
        "notes": notes,
    }
    if measured.nominated is not None:
        info["nominated"] = measured.nominated
    info.update(measured.extra_info)
    # refused before writing if it would end more than a fifth of the current sites in
    # scope, unless allow_mass_end (see omw_sites.store.inventory.check_mass_end)
    changes = open_inventory(store).apply(
        scored,
        reference,
        info,
        measured.quarantine,
        scope=scope,
        source=f"run:{run_id}",
        allow_mass_end=allow_mass_end,
        staged=measured.staged,
    )
    lap("store")
    say(
        "store",
        f"{changes.added:,} added, {changes.changed:,} changed, {changes.ended:,} ended, "
        f"{changes.unchanged:,} unchanged, {len(changes.merged):,} duplicates merged",
        len(scored),
    )

    top, exclusions = {}, {}
    for p in profs:
        r = rank_col(p.name)
        ranked = scored[scored[r] > 0].sort_values(r).head(top_n)
        if ranked.empty:
            reasons = scored[f"excluded_{p.name}"]
            exclusions[p.name] = {str(k): int(v) for k, v in reasons.value_counts().items()}
        zoning = ranked["zoning_symbol"].where(
            ranked["zoning_symbol"] != "",
            (ranked["plan_zone"] + " (plan ogólny)").where(ranked["plan_zone"] != "", "—"),
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
        parcels=measured.n_parcels,
        sites=len(scored),
        quarantined=len(measured.quarantine),
        profiles=profs,
        stage_seconds=lap.times,
        peak_rss_mb=round(peak, 1),
        top=top,
        changes=changes,
        notes=notes,
        exclusions=exclusions,
    )


def _nomination_notes(
    nominations: Nominations | None, parcels: gpd.GeoDataFrame, sites: gpd.GeoDataFrame
) -> list[str]:
    """Summary lines of a nomination list: what it gave, and the IDs not found."""
    if nominations is None:
        return []
    missing = sorted(nominations.ids - set(parcels["parcel_id"]))
    found = len(nominations) - len(missing)
    n_sites = int(sites["nominated"].sum()) if "nominated" in sites and len(sites) else 0
    name = nominations.path.name
    lines = [
        f"nomination list {name}: {found:,} of {len(nominations):,} parcels found, "
        f"{n_sites:,} nominated site(s)"
    ]
    shown = missing[:5]
    lines += [f"nomination list {name}: parcel {pid} not found among the parcels" for pid in shown]
    if len(missing) > len(shown):
        lines.append(
            f"nomination list {name}: {len(missing) - len(shown):,} more parcel IDs not found"
        )
    return lines


def _scoring_lines(notes: dict[str, dict]) -> list[str]:
    """Summary lines of what missing data did to each profile."""
    lines = []
    for name, n in notes.items():
        dropped = n.get("criteria_without_data") or []
        if dropped:
            used = [c for c, w in n["weights"].items() if w > 0]
            lines.append(
                f"{name}: weights renormalised over the {len(used)} criteria with data "
                f"(no data: {', '.join(dropped)})"
            )
        for reason, count in (n.get("constraints_not_applied") or {}).items():
            lines.append(
                f"{name}: constraint '{reason}' not applied to {count:,} site(s) (no data)"
            )
    return lines
