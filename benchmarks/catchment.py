"""Benchmark the workforce catchment (residents within 30 and 45 minutes by road).

Usage: python benchmarks/catchment.py [--parcels 1000000] [--sample 200] [--seed 42]

On a demo region of ``--parcels`` parcels (generated once into ``_work/``): the road
graph, the sites' access and the population on graph nodes are built once (timed
apart), then the catchment of every site is timed (bounded Dijkstra in batches from the
smaller of the access-node and population-node sets). The baseline, in the same run on
the same graph, is one full (unbounded) Dijkstra per site from its access segment's two
nodes, on a sample of sites, extrapolated to all of them; the sample's answers must
equal the fast ones.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from omw_sites.criteria.catchment import catchment, population_nodes, site_catchment_baseline
from omw_sites.criteria.network import access_points, build_graph
from omw_sites.demo.region import build_region
from omw_sites.etl.ingest import load_raw
from omw_sites.sites import assemble_sites, select_candidates

WORK = Path(__file__).parent / "_work"


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores, {mem:.0f} GB RAM, {cpu}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parcels", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    raw_dir = WORK / f"raw_catchment_{args.parcels}"
    if not (raw_dir / "gus").is_dir():
        t = time.perf_counter()
        build_region(raw_dir, parcels=args.parcels, seed=args.seed)
        print(f"region generated in {time.perf_counter() - t:.0f} s")
    raw = load_raw(raw_dir)
    cand = select_candidates(raw["parcels"], raw.get("zoning"), raw.get("plan_zones"))
    sites = assemble_sites(cand)
    geoms = sites.geometry.to_numpy()

    t0 = time.perf_counter()
    graph = build_graph(raw["roads"], raw.get("junctions"))
    access = access_points(graph, geoms)
    people = population_nodes(graph, raw["population"])
    t_prep = time.perf_counter() - t0
    t1 = time.perf_counter()
    fast = catchment(graph, access, people)
    t_fast = time.perf_counter() - t1

    rng = np.random.default_rng(0)
    on = np.flatnonzero(access.segment >= 0)
    sample = np.sort(rng.choice(on, size=min(args.sample, len(on)), replace=False))
    t2 = time.perf_counter()
    slow = site_catchment_baseline(graph, access, people, sample)
    t_slow = time.perf_counter() - t2
    per_site = t_slow / len(sample)
    same = np.array_equal(slow, fast[:, sample])

    n_acc = len(np.unique(np.concatenate([graph.edge_u[access.segment[on]],
                                          graph.edge_v[access.segment[on]]])))  # fmt: skip
    print(f"machine: {machine()}")
    print(
        f"region: {args.parcels:,} parcels, {len(sites):,} sites, graph {graph.n_nodes:,} "
        f"nodes / {graph.matrix.nnz:,} edges, {n_acc:,} access nodes, {len(people.node):,} "
        f"population nodes ({int(people.values[:, 0].sum()):,} residents)"
    )
    print(f"graph + access + population on nodes: {t_prep:.2f} s")
    print(f"catchment, every site (bounded, batched): {t_fast:.2f} s")
    print(
        f"baseline, one full Dijkstra per site: {per_site * 1000:.1f} ms/site on "
        f"{len(sample)} sites -> {per_site * len(sites):.0f} s for all "
        f"({per_site * len(sites) / t_fast:.0f}x); same answers on the sample: {same}"
    )
    top = np.argsort(-np.nan_to_num(fast[0, :, 1]))[:5]
    print("largest 30-minute workforce:", ", ".join(f"{fast[0, i, 1]:,.0f}" for i in top))


if __name__ == "__main__":
    main()
