"""Loopback load on one shared inventory: readers, conditional writers and an ingest at once.

    python benchmarks/api_load.py --sites 20000 --seconds 30 [--backend gpkg|postgis]

The server runs in its own process as ``omw-sites serve`` runs it. Every client is a process
of its own (httpx over 127.0.0.1):

- 8 readers page through filtered item lists (CQL2 filter + bbox + profile order);
- 2 writers change a site's price with ``If-Match`` (GET the item for its ETag, PATCH with
  it; a 412 means another writer came first: read again and retry);
- 1 scoped update (what ``omw-sites db ingest --gmina`` writes after measuring: 1 % of one
  gmina's sites re-measured) runs through ``Inventory.apply`` in another process, twice.

First the readers run alone for the same time (the baseline of this run), then everything
together. Checked afterwards: no 5xx; every accepted PATCH is in the site's history and the
last accepted price of each site is its current price (no lost update); the server's
resident memory sampled every 0.25 s (flat means: the end is close to the start).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

SERVER = textwrap.dedent(
    """
    import socket, sys
    from omw_sites.api import make_server
    # IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so (proto 0 leaves
    # Nagle on, and a response written in two parts then waits ~40 ms for an ACK)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    make_server(sys.argv[1], log_level="warning", access_log=False).run(sockets=[sock])
    """
)
READERS, WRITERS = 8, 2
FILTERS = [
    "area_ha > {a} AND teryt = '{t}'",
    "score_logistics > 0.{d} AND NOT tier_logistics = 'C'",
    "teryt IN ('{t}','1418043') AND dist_sewer_m < {m}",
    "gmina LIKE '%a%' AND area_ha BETWEEN 1 AND {a}",
]


def _reader(url: str, seconds: float, seed: int, out: mp.Queue) -> None:
    import random

    import httpx
    from store import TERYT  # noqa: PLC0415 (benchmarks/store.py)

    rnd = random.Random(seed)
    lat, codes = [], {}
    end = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=60, trust_env=False) as c:
        while time.monotonic() < end:
            f = rnd.choice(FILTERS).format(
                a=rnd.randint(1, 15),
                t=rnd.choice(TERYT),
                d=rnd.randint(1, 8),
                m=rnd.randint(500, 15000),
            )
            q = f"limit=100&offset={rnd.choice([0, 100, 500])}&filter={quote(f)}"
            if rnd.random() < 0.5:
                q += "&profile=logistics"
            if rnd.random() < 0.3:
                q += "&bbox=20.5,52.0,21.5,52.5"
            t = time.perf_counter()
            try:
                status = c.get(f"/collections/sites/items?{q}").status_code
            except httpx.HTTPError as exc:  # a reset or a timeout: counted, not fatal
                status = type(exc).__name__
            lat.append(time.perf_counter() - t)
            codes[status] = codes.get(status, 0) + 1
    out.put(("reader", lat, codes))


def _writer(url: str, key: str, ids: list[str], seconds: float, seed: int, out: mp.Queue):
    import random

    import httpx

    rnd = random.Random(seed)
    accepted: list[tuple[str, float, float]] = []  # site, price, when
    codes: dict[int, int] = {}
    lat: list[float] = []
    refused = 0
    end = time.monotonic() + seconds
    n = 0
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=60, trust_env=False) as c:
        while time.monotonic() < end:
            site = rnd.choice(ids)
            for _ in range(20):  # until this writer's change lands
                try:
                    got = c.get(f"/collections/sites/items/{site}")
                except httpx.HTTPError as exc:
                    codes[type(exc).__name__] = codes.get(type(exc).__name__, 0) + 1
                    break
                codes[got.status_code] = codes.get(got.status_code, 0) + 1
                if got.status_code != 200:
                    break
                n += 1
                price = seed * 100_000 + n  # unique (under the 1,000,000 cap): which won
                t = time.perf_counter()
                try:
                    r = c.patch(
                        f"/collections/sites/items/{site}",
                        json={"price_pln_m2": price},
                        headers={**auth, "If-Match": got.headers["etag"]},
                    )
                except httpx.HTTPError as exc:  # whether it landed is unknown: not counted
                    codes[type(exc).__name__] = codes.get(type(exc).__name__, 0) + 1
                    break
                lat.append(time.perf_counter() - t)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    accepted.append((site, float(price), time.time()))
                    break
                if r.status_code != 412:
                    break
                refused += 1
    out.put(("writer", accepted, codes, refused, lat))


def _ingest(target: str, n: int, delay: float, rounds: int, out: mp.Queue) -> None:
    from store import TERYT, one_percent_update, synthetic_sites  # noqa: PLC0415

    from omw_sites.store import open_inventory

    time.sleep(delay)
    sites = synthetic_sites(n)
    inv = open_inventory(target)
    reports, failed = [], []
    for i in range(rounds):
        update = one_percent_update(sites, seed=10 + i)
        t = time.perf_counter()
        try:
            rep = inv.apply(update, None, {"run_id": f"load-ingest-{i}"}, scope=[TERYT[0]])
            reports.append((time.perf_counter() - t, rep.changed, rep.added, rep.ended))
        except Exception as exc:  # reported, never a hang of the benchmark
            failed.append(f"{type(exc).__name__}: {exc}")
        time.sleep(delay)
    out.put(("ingest", reports, failed))


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _sample(pid: int, stop: threading.Event, into: list[tuple[float, float]]) -> None:
    t0 = time.monotonic()
    while not stop.is_set():
        into.append((time.monotonic() - t0, _rss_mb(pid)))
        stop.wait(0.25)


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def _run_readers(url: str, seconds: float, seed: int) -> tuple[list[float], dict[int, int]]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_reader, args=(url, seconds, seed + i, q)) for i in range(READERS)]
    for p in procs:
        p.start()
    lat, codes = [], {}
    for _ in procs:
        _, more, c = q.get()
        lat += more
        for k, v in c.items():
            codes[k] = codes.get(k, 0) + v
    for p in procs:
        p.join()
    return lat, codes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sites", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--backend", choices=["gpkg", "postgis"], default="gpkg")
    ap.add_argument("--pg-url", help="PostGIS database URL (default: a throw-away cluster)")
    args = ap.parse_args()

    from store import synthetic_sites  # noqa: PLC0415

    from omw_sites.store import open_inventory

    tmp = Path(tempfile.mkdtemp(prefix="omw-load-"))
    stop_cluster = None
    if args.backend == "gpkg":
        target = str(tmp / "store.gpkg")
    else:
        url = args.pg_url
        if not url:
            from omw_sites.store.pgcluster import start_cluster

            url, stop_cluster = start_cluster(tmp / "pg")
        target = f"{url}?schema=load_{uuid.uuid4().hex[:8]}"
    t = time.perf_counter()
    sites = synthetic_sites(args.sites)
    inv = open_inventory(target)
    inv.apply(sites, None, {"run_id": "load-first"})
    key = inv.add_api_key("load-writer", ["*"])
    print(f"store: {args.sites:,} sites on {args.backend} in {time.perf_counter() - t:.1f} s")

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, target], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        import httpx

        for _ in range(600):  # the server loads the store before it answers
            try:
                if httpx.get(url + "/", timeout=5, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        rss0 = _rss_mb(server.pid)
        print(f"server up, RSS {rss0:.0f} MB")

        base_lat, base_codes = _run_readers(url, args.seconds, seed=100)

        ids = sites["site_id"].sample(n=min(200, len(sites)), random_state=3).tolist()
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        samples: list[tuple[float, float]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(server.pid, stop, samples))
        sampler.start()
        procs = [
            ctx.Process(target=_reader, args=(url, args.seconds, 200 + i, q))
            for i in range(READERS)
        ]
        procs += [
            ctx.Process(target=_writer, args=(url, key, ids, args.seconds, 1 + i, q))
            for i in range(WRITERS)
        ]
        procs.append(ctx.Process(target=_ingest, args=(target, args.sites, args.seconds / 4, 2, q)))
        for p in procs:
            p.start()
        results = [q.get(timeout=args.seconds * 10 + 600) for _ in procs]
        for p in procs:
            p.join()
        stop.set()
        sampler.join()
        rss_end = _rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)

    lat, codes, accepted, wcodes, refused, wlat, ingest = [], {}, [], {}, 0, [], []
    ingest_failed: list[str] = []
    for r in results:
        if r[0] == "reader":
            lat += r[1]
            for k, v in r[2].items():
                codes[k] = codes.get(k, 0) + v
        elif r[0] == "writer":
            accepted += r[1]
            for k, v in r[2].items():
                wcodes[k] = wcodes.get(k, 0) + v
            refused += r[3]
            wlat += r[4]
        else:
            ingest, ingest_failed = r[1], r[2]

    # every accepted write is in the history; the last accepted price is the current one
    inv = open_inventory(target)
    lost = missing = 0
    last: dict[str, float] = {}
    for site, price, _ in sorted(accepted, key=lambda a: a[2]):
        last[site] = price
    for site, price in last.items():
        rec = inv.record(site)
        if float(rec["price_pln_m2"]) != price:
            lost += 1
    for site in {a[0] for a in accepted}:
        hist = inv.history(site)
        written = set(hist.loc[hist["field"] == "price_pln_m2", "new_value"].astype(float).tolist())
        missing += sum(1 for s, p, _ in accepted if s == site and p not in written)

    # 5xx and broken connections
    fivexx = sum(v for k, v in codes.items() if not isinstance(k, int) or k >= 500)
    fivexx += sum(v for k, v in wcodes.items() if not isinstance(k, int) or k >= 500)
    peak = max(m for _, m in samples) if samples else float("nan")
    print()
    print(f"| {args.backend} {args.sites:,} sites, {args.seconds:.0f} s | requests | "
          "p50 ms | p95 ms | p99 ms | statuses |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---|")
    print(
        f"| reads alone (baseline) | {len(base_lat):,} | {_pct(base_lat, 50):.0f} | "
        f"{_pct(base_lat, 95):.0f} | {_pct(base_lat, 99):.0f} | {base_codes} |"
    )
    print(
        f"| reads under writes + ingest | {len(lat):,} | {_pct(lat, 50):.0f} | "
        f"{_pct(lat, 95):.0f} | {_pct(lat, 99):.0f} | {codes} |"
    )
    if wlat:
        print(
            f"| conditional PATCH | {len(wlat):,} | {_pct(wlat, 50):.0f} | "
            f"{_pct(wlat, 95):.0f} | {_pct(wlat, 99):.0f} | {wcodes} |"
        )
    print()
    print(
        f"PATCH accepted {len(accepted)}, refused with 412 {refused}; "
        f"5xx or broken connections: {fivexx}"
    )
    print(f"lost updates: {lost}; accepted writes missing from history: {missing}")
    for secs, changed, added, ended in ingest:
        print(f"scoped update: {secs:.1f} s, changed {changed}, added {added}, ended {ended}")
    for why in ingest_failed:
        print(f"scoped update FAILED: {why}")
    print(
        f"server RSS: start {rss0:.0f} MB, peak {peak:.0f} MB, end {rss_end:.0f} MB "
        f"({len(samples)} samples)"
    )
    print(f"reads median {statistics.median(lat) * 1000:.0f} ms" if lat else "no reads")
    if stop_cluster:
        stop_cluster()
    if fivexx or lost or missing or ingest_failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
