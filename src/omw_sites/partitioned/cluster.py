"""``omw-sites run --scheduler``: the pipeline on a Dask cluster, partitioned by powiat.

The same run as :func:`omw_sites.pipeline.run`, cut where the work is local:

0. the workers look at the folder's files, several at a time, for the plan
   (:func:`~omw_sites.partitioned.plan.plan_partitions`);
1. one task reads the layers that must be whole (roads, destinations, census grid,
   the store's reference layers) and computes the road network's per-node minutes and
   people once (:func:`~omw_sites.partitioned.tasks.network_task`); into PostGIS it
   stages the reference layers in the store's database (:func:`_staging`);
2. one task per powiat reads its window of the folder, assembles and measures its
   sites with that shared network (:func:`~omw_sites.partitioned.tasks.partition_task`);
3. here, the measured sites are joined, scored region-wide and written to the store in
   one transaction (:func:`omw_sites.pipeline.finish`) — the parcels and layers never
   meet in one process, only the sites (a few per cent of the parcels).

Workers are Dask's (``distributed``): a ``LocalCluster`` of processes on this machine
(``local``), or an existing scheduler (``tcp://host:port``) whose workers see the raw
folder at the same path.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from distributed import Variable, as_completed

from omw_sites.config import MIN_CANDIDATE_AREA_HA, store_target
from omw_sites.criteria.measure import Coverage
from omw_sites.etl import IngestError
from omw_sites.etl.nominations import Nominations
from omw_sites.layers import SITE_NO_DATA, STORE_FILE
from omw_sites.partitioned.plan import POWIAT, Plan, plan_partitions
from omw_sites.partitioned.tasks import (
    BEYOND_WINDOW,
    NetworkResult,
    PartitionResult,
    SharedNetwork,
    complete_task,
    measured_elsewhere,
    nearest_elsewhere,
    outline,
    partition_task,
    stage_task,
)
from omw_sites.pipeline import (
    Laps,
    Measured,
    RunSummary,
    finish,
    prepare,
    previous_sites,
    with_offers,
)
from omw_sites.scoring import Profile
from omw_sites.scoring.engine import profile_names
from omw_sites.sites import lineage
from omw_sites.store import is_url, open_backend
from omw_sites.store.base import StagedLayer, StoreError

Progress = Callable[[str, str, int], None]
DEFAULT_HALO_KM = 30.0


@dataclass(frozen=True)
class ClusterOptions:
    """Where and how a partitioned run runs."""

    scheduler: str = "local"  # "local" or a scheduler address (tcp://host:port)
    workers: int = 2  # LocalCluster worker processes
    worker_memory: str = "4GB"  # LocalCluster memory limit per worker
    halo_km: float = DEFAULT_HALO_KM
    partition: str = POWIAT


@contextmanager
def dask_client(options: ClusterOptions):
    """A ``distributed.Client`` on a new LocalCluster or an existing scheduler."""
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    if options.scheduler == "local":
        cluster = LocalCluster(
            n_workers=options.workers,
            threads_per_worker=1,  # numpy/GEOS work holds the GIL: processes, not threads
            processes=True,
            memory_limit=options.worker_memory,
            dashboard_address=":0",  # any free port: never collide with another run
            silence_logs=logging.CRITICAL,  # a failed task is reported here, in one line
        )
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
    elif options.scheduler.startswith(("tcp://", "tls://")):
        with Client(options.scheduler, timeout="30s") as client:
            yield client
    else:
        msg = f"--scheduler must be 'local' or tcp://HOST:PORT, not {options.scheduler!r}"
        raise ValueError(msg)


def run_partitioned(
    raw_dir: str | Path,
    options: ClusterOptions,
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
    """:func:`omw_sites.pipeline.run` on a Dask cluster, one task per powiat; the same
    sites, criteria, scores and ranks. Nothing is written unless every partition
    succeeded (a failed task raises here, before the store)."""
    if options.partition != POWIAT:
        raise ValueError(f"--partition must be {POWIAT!r}, not {options.partition!r}")
    say = progress or (lambda stage, msg, n: None)
    lap = Laps()
    profs, nominations, offered = prepare(profiles, profile_dir, nominated, say, lap)
    raw_dir = str(Path(raw_dir).resolve())
    halo_m = options.halo_km * 1000.0
    if store is None:
        store = Path(out_dir) / STORE_FILE if out_dir is not None else store_target()
    with _staging(store, say) as stage:
        with dask_client(options) as client:
            plan = plan_partitions(raw_dir, client)  # its files looked at by the workers
            parts = plan.partitions
            lap("plan")
            keys = ", ".join(p.key for p in parts)
            say("plan", f"{len(parts)} partitions by powiat: {keys}", len(parts))
            # into PostGIS only what scoring reads comes here; the rest is staged
            lean = None if stage is None else summary_columns(profs)
            net, results, held = _run_tasks(
                client, raw_dir, plan, halo_m, offered, say, stage, lean
            )
            results = _completed(client, raw_dir, plan, halo_m, net, results, held, lean, say)
            lap("partitions")
            with_sites = [r.key for r in results if len(r.sites)]
            measured, elsewhere = _joined(net, results, options)
            _any_sites(measured, results, raw_dir)
            if stage is None:
                _offers_and_lineage(measured, nominations, store)
            else:
                _stage_sites(client, held, with_sites, elsewhere, nominations, stage, measured)
                n = measured.staged.rows if measured.staged else 0
                say("sites", f"{n:,} sites staged by {len(with_sites)} partitions", n)
            del held  # the partitions' whole results leave the workers
        lap("sites")
        n_sites = len(measured.sites)
        say("sites", f"{n_sites:,} sites from {len(results)} partitions", n_sites)
        return finish(measured, profs, store, raw_dir, say, lap, scope, allow_mass_end, top_n)


#: columns of the sites the coordinator receives when the partitions stage them: what
#: the run's summary shows (and, with :func:`profile_names`, what scoring reads)
SUMMARY_COLUMNS = ("site_id", "teryt", "gmina", "area_ha", "zoning_symbol", "plan_zone")


def summary_columns(profs: list[Profile]) -> set[str]:
    """The site columns scoring (``profs``) and the run's summary read."""
    return {*SUMMARY_COLUMNS, SITE_NO_DATA, *(n for p in profs for n in profile_names(p))}


@contextmanager
def _staging(store: str | Path, say: Progress) -> Iterator[tuple[str, str] | None]:
    """For a PostGIS store: (store, the name of a schema of its database) where the
    network task stages the reference layers for the store's transaction
    (:meth:`~omw_sites.store.postgis.PostGISBackend.stage`), dropped at the end whatever
    happened; ``None`` for a GeoPackage (the layers come here as frames)."""
    if not is_url(store):
        yield None
        return
    # the start time in the name: a run killed outright (no chance to drop it) leaves a
    # schema whose age says whether a run may still be using it
    schema = f"omw_stage_{time.strftime('%Y%m%d%H%M', time.gmtime())}_{uuid.uuid4().hex[:8]}"
    try:
        yield str(store), schema
    finally:
        try:
            open_backend(store).drop_stage(schema)
        except StoreError as err:  # the run's own outcome stands; the leftover is named
            say("store", f"staging schema {schema} left behind: {err}", 0)


def _completed(
    client: Any,
    raw_dir: str,
    plan: Plan,
    halo_m: float,
    net: NetworkResult,
    results: list[PartitionResult],
    held: dict[str, Any],
    lean: set[str] | None,
    say: Progress,
) -> list[PartitionResult]:
    """The partitions that found nothing of a layer of nearest-feature distances in
    their windows while the folder has one look for it farther
    (:func:`~omw_sites.partitioned.tasks.complete_task`, on the workers, all at once):
    their sites get the distances one process gives. With ``lean`` (staged sites) the
    whole results stay on the workers (``held`` is updated) and here come their
    outlines."""
    wanted = nearest_elsewhere(results, net.nearest)
    if not wanted:
        return results
    run = uuid.uuid4().hex
    done: dict[str, Any] = {}
    for r in results:
        if r.key not in wanted:
            continue
        source = held[r.key] if lean is not None else r
        fut = client.submit(
            complete_task, source, wanted[r.key], raw_dir, plan, halo_m,
            key=f"omw-complete-{r.key}-{run}", pure=False,
        )  # fmt: skip
        if lean is not None:
            held[r.key] = fut
            fut = client.submit(outline, fut, lean, key=f"omw-outline2-{r.key}-{run}", pure=False)
        done[r.key] = fut
    for key, fut in done.items():
        done[key] = fut.result()
    cols = sorted({c for cs in wanted.values() for c in cs})
    say("partition", f"{len(done)} partitions looked farther for {', '.join(cols)}", len(done))
    return [done.get(r.key, r) for r in results]


def _any_sites(measured: Measured, results: list[PartitionResult], raw_dir: str) -> None:
    """Stop (:class:`IngestError`, before the store) a run that found no site."""
    if len(measured.sites):
        return
    n = sum(r.candidates for r in results)
    why = (
        f"the {n:,} candidate parcels form no site of at least {MIN_CANDIDATE_AREA_HA:g} ha"
        if n
        else "no parcel has an investment designation (MPZP, plan ogólny) or is nominated"
    )
    raise IngestError(Path(raw_dir), f"no candidate sites: {why}", rule="candidate parcels")


def _offers_and_lineage(
    measured: Measured, nominations: Nominations | None, store: str | Path
) -> None:
    """The joined sites with the nomination list's offers and their lineage from the
    store's current sites (into a GeoPackage: here, as in one process)."""
    measured.sites = with_offers(measured.sites, nominations)
    if nominations is not None:
        measured.nominated = _nominated(nominations, measured.sites["notes"])
    measured.sites["derived_from"] = lineage(measured.sites, previous_sites(store))


def _nominated(nominations: Nominations, notes: pd.Series) -> dict[str, Any]:
    """``run_info['nominated']``: the list, and how many sites got an offer from it."""
    return {
        "file": str(nominations.path),
        "listed": len(nominations),
        "found_sites": int(notes.notna().sum()),
    }


def _stage_sites(
    client: Any,
    held: dict[str, Any],
    keys: list[str],
    elsewhere: dict[str, list[str]],
    nominations: Nominations | None,
    stage: tuple[str, str],
    measured: Measured,
) -> None:
    """Each partition with sites writes them, from the worker that holds them, into the
    staging schema beside the PostGIS store (:func:`~omw_sites.partitioned.tasks.
    stage_task`), all at once; the joined sites here get their content hashes and
    offers, and ``measured.staged`` the staged sites for the store's transaction."""
    url, schema = stage
    run = uuid.uuid4().hex
    tasks = [
        client.submit(
            stage_task,
            held[key],
            elsewhere.get(key, []),
            nominations,
            url,
            schema,
            key=f"omw-stage-{key}-{run}",
            pure=False,
        )
        for key in keys
    ]
    got = pd.concat(client.gather(tasks), ignore_index=True)
    got = got.sort_values("site_id", ignore_index=True)
    sites = measured.sites
    if not np.array_equal(got["site_id"].to_numpy(), sites["site_id"].to_numpy()):
        raise RuntimeError("the staged sites are not the partitions' sites")  # a defect
    measured.sites = sites.drop(columns=["nominated"], errors="ignore").assign(
        **{c: got[c].to_numpy() for c in got.columns if c != "site_id"}
    )
    if nominations is not None:
        measured.nominated = _nominated(nominations, got["notes"])
    measured.staged = open_backend(url).staged_sites(schema, keys)
    # recorded with the run: how many site rows the partitions wrote beside the store
    measured.extra_info["partitioned"]["staged_sites"] = measured.staged.rows


def _run_tasks(
    client: Any,
    raw_dir: str,
    plan: Plan,
    halo_m: float,
    offered: dict[str, str] | None,
    say: Progress,
    stage: tuple[str, str] | None = None,
    lean: set[str] | None = None,
) -> tuple[NetworkResult, list[PartitionResult], dict[str, Any]]:
    """The network actor and one task per powiat on ``client``; their results, in powiat
    order. A failed task raises here. With ``stage`` (store URL, schema) the actor
    stages the reference layers in the store's database (see :func:`_staging`). With
    ``lean``, the results come with only those site columns, without shapes
    (:func:`~omw_sites.partitioned.tasks.outline`), and their whole results stay on
    the workers: the futures are returned by powiat (else an empty dict)."""
    parts = plan.partitions
    # one worker builds and holds the whole road network (first: the partitions wait
    # for it once their windows are read); each partition receives only the part its
    # sites use. Keys and the variable's name are this run's own: a scheduler may serve
    # other runs at the same time.
    run = uuid.uuid4().hex
    name = f"omw-network-{run}"
    network_at, partition_at = _placement(client)
    actor = client.submit(
        SharedNetwork,
        raw_dir,
        plan.files,
        stage,
        key=name,
        actor=True,
        priority=2**62,
        resources=network_at,
    )
    shared = Variable(name, client=client)
    shared.set(actor)
    try:
        futures = [
            client.submit(
                partition_task,
                raw_dir,
                p,
                plan,
                name,
                halo_m,
                offered,
                key=f"omw-partition-{p.key}-{run}",
                pure=False,
                resources=partition_at,
                priority=p.parcels,  # the largest powiaty first: the last tasks are short
            )
            for p in parts
        ]
        held = dict(zip((p.key for p in parts), futures, strict=True))
        watched = futures
        if lean is not None:
            watched = [
                client.submit(outline, f, lean, key=f"omw-outline-{k}-{run}", pure=False)
                for k, f in held.items()
            ]
        net: NetworkResult = actor.result().summary().result()
        say("network", f"road network built ({net.seconds:.1f} s)", 1)
        done: dict[str, PartitionResult] = {}
        for f in as_completed(watched):  # said as they finish; a failed one raises here
            r = f.result()
            done[r.key] = r
            say(
                "partition",
                f"powiat {r.key}: {len(r.sites):,} sites ({r.seconds:.1f} s; "
                f"{len(done)} of {len(parts)})",
                len(r.sites),
            )
    finally:
        shared.delete()
    # in powiat order, whatever the finish
    return net, [done[p.key] for p in parts], held if lean is not None else {}


def _placement(client: Any) -> tuple[dict[str, float] | None, dict[str, float] | None]:
    """Where the network and the partitions may run: a cluster whose workers advertise
    Dask resources ``network`` (``dask worker --resources network=1``: one worker with
    the memory for the country's road graph) or ``partition`` (the others) gets the
    network on the first kind and the partitions on the second; without them, anywhere.
    Only the workers connected when the run starts are looked at."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {}).values()
    offered = {r for w in workers for r in (w.get("resources") or {})}
    return (
        {"network": 1} if "network" in offered else None,
        {"partition": 1} if "partition" in offered else None,
    )


def _joined(
    net: NetworkResult,
    results: list[PartitionResult],
    options: ClusterOptions,
) -> tuple[Measured, dict[str, list[str]]]:
    """The partitions' sites and records as one run's (the partitions' own frames are
    emptied once joined: the coordinator holds the sites once), and by partition the
    columns only others measured (:func:`_merged_coverage`)."""
    counts = [len(r.sites) for r in results]
    with_sites = [r for r in results if len(r.sites)]
    coverage, elsewhere = _merged_coverage(with_sites)
    for r in with_sites:
        measured_elsewhere(r.sites, elsewhere.get(r.key, []))
    frames = [r.sites for r in with_sites]
    if not frames:
        sites = gpd.GeoDataFrame(geometry=[])
    elif "geometry" in frames[0]:
        joined = pd.concat(frames, ignore_index=True)
        sites = gpd.GeoDataFrame(joined, geometry="geometry", crs=frames[0].crs)
    else:  # staged: the shapes stay on the workers (see stage_task)
        sites = pd.concat(frames, ignore_index=True)
    if len(sites):
        dup = sites["site_id"].duplicated()
        if dup.any():  # each site is kept by one partition: a second copy is a defect
            raise RuntimeError(f"site {sites.loc[dup, 'site_id'].iloc[0]} kept by two partitions")
        sites = sites.sort_values("site_id").reset_index(drop=True)
    del frames
    for r in with_sites:
        r.sites = r.sites.iloc[:0]
    notes = list(dict.fromkeys([*net.notes, *(n for r in results for n in r.notes)]))
    absent: dict[str, str] = {}
    dates: dict[str, str] = dict(net.data_dates)
    for r in results:
        for k, why in r.absent.items():
            absent.setdefault(k, why)
        for k, d in r.data_dates.items():
            dates.setdefault(k, d)
    absent.update(net.absent)
    quarantine = pd.concat([r.quarantine for r in results], ignore_index=True)
    if len(quarantine):
        quarantine = quarantine.astype(str).drop_duplicates(ignore_index=True)
    info: dict[str, Any] = {
        "partitioned": {
            "by": options.partition,
            "scheduler": options.scheduler if options.scheduler != "local" else
            f"local ({options.workers} workers, {options.worker_memory} each)",
            "halo_km": options.halo_km,
            "network": {"seconds": net.seconds, "peak_rss_mb": net.peak_mb,
                        "worker_pid": net.pid, "road_nodes": net.road_nodes,
                        "ingest": net.stats,
                        # reference layers the network's worker wrote into the store's
                        # database (rows), moved in by the store's transaction
                        "staged": {k: v.rows for k, v in net.reference.items()
                                   if isinstance(v, StagedLayer)}},
            "partitions": [
                {"powiat": r.key, "parcels": r.parcels, "sites": n,
                 "halo_km": r.halo_m / 1000.0, "seconds": r.seconds,
                 "peak_rss_mb": r.peak_mb, "worker_pid": r.pid, "road_nodes": r.road_nodes,
                 "widened": r.widened, "beyond_window": r.beyond_halo}
                for r, n in zip(results, counts, strict=True)
            ],
        }
    }  # fmt: skip
    measured = Measured(
        sites,
        coverage,
        notes,
        net.reference,
        sum(r.parcels for r in results),
        dates,
        absent,
        net.stats,
        _merged_files(net.files, [r.files for r in results]),
        quarantine,
        extra_info=info,
    )
    return measured, elsewhere


def _merged_coverage(results: list[PartitionResult]) -> tuple[Coverage, dict[str, list[str]]]:
    """One coverage record: a column is not measured when no partition measured it; a
    column some partitions measured and others found nothing of in their windows is,
    for those others' sites, a per-site gap (a feature beyond the window) — those
    columns by partition are returned beside it, for :func:`measured_elsewhere`."""
    cov = Coverage()
    elsewhere: dict[str, list[str]] = {}
    if not results:
        return cov, elsewhere
    nowhere = set.intersection(*(set(r.coverage.not_measured) for r in results))
    for r in results:
        for col, why in r.coverage.not_measured.items():
            if col in nowhere:
                cov.not_measured.setdefault(col, why)
                continue
            elsewhere.setdefault(r.key, []).append(col)
            if col.startswith("dist_"):
                r.beyond_halo[col] = r.beyond_halo.get(col, 0) + len(r.sites)
        for what, text in r.coverage.partial.items():
            cov.partial.setdefault(what, text)
        for text, n in r.coverage.site_counts.items():
            cov.site_counts[text] = cov.site_counts.get(text, 0) + n
        for col, n in r.beyond_halo.items():
            text = f"{col}: {BEYOND_WINDOW}"
            cov.site_counts[text] = cov.site_counts.get(text, 0) + n
    return cov, elsewhere


def _merged_files(first: list[dict], others: list[list[dict]]) -> list[dict]:
    """``run_info['files']``: each file as the task that used it saw it (the network
    task's entry, else the first partition's that used it)."""
    out = {e["file"]: e for e in first}
    for files in others:
        for e in files:
            if out.get(e["file"], {}).get("status") != "used" and e.get("status") == "used":
                out[e["file"]] = e
    return list(out.values())
