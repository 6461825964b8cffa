"""Loopback load on one shared inventory: readers, conditional writers and an ingest at once.

    python benchmarks/api_load.py --sites 20000 --seconds 30 [--backend gpkg|postgis]

The server runs in its own process as ``omw-sites serve`` runs it. Every client is a process
of its own (httpx over 127.0.0.1):

- 8 readers page through filtered item lists (CQL2 filter + bbox + profile order);
- 2 writers change a site's price with ``If-Match`` (GET the item for its ETag, PATCH with
  it; a 412 means another writer came first: read again and retry);
- 1 scoped update (what ``omw-sites db load --gmina`` writes after measuring: 1 % of one
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

SERVER = textwrap.dedent(
    """
    import logging, socket, sys
    from omw_sites.api import make_server
    # how the served copy followed each scoped update (in place or reloaded), on stderr
    logging.basicConfig(level=logging.WARNING, format="server: %(message)s")
    logging.getLogger("omw_sites.api.catalog").setLevel(logging.INFO)
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


@dataclass
class _Results:
    """What the clients of the mixed phase reported, summed over processes."""

    lat: list[float] = field(default_factory=list)  # reader latencies
    codes: dict = field(default_factory=dict)  # reader statuses
    accepted: list = field(default_factory=list)  # (site, price, time) of accepted PATCHes
    wcodes: dict = field(default_factory=dict)  # writer statuses
    refused: int = 0  # PATCHes refused with 412
    wlat: list[float] = field(default_factory=list)  # writer latencies
    ingest: list = field(default_factory=list)  # (seconds, changed, added, ended) per update
    ingest_failed: list[str] = field(default_factory=list)

    def add(self, r: tuple) -> None:
        if r[0] == "reader":
            self.lat += r[1]
            _count(self.codes, r[2])
        elif r[0] == "writer":
            self.accepted += r[1]
            _count(self.wcodes, r[2])
            self.refused += r[3]
            self.wlat += r[4]
        else:
            self.ingest, self.ingest_failed = r[1], r[2]


def _count(into: dict, more: dict) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


@dataclass
class _Server:
    """The server's side of a run: baseline reads and resident memory."""

    base_lat: list[float]
    base_codes: dict
    rss0: float
    rss_end: float
    samples: list[tuple[float, float]]


def _store_target(backend: str, pg_url: str | None, tmp: Path) -> tuple[str, Callable | None]:
    """Where the inventory goes, and how to stop the throw-away cluster if one was started."""
    if backend == "gpkg":
        return str(tmp / "store.gpkg"), None
    stop_cluster = None
    url = pg_url
    if not url:
        sys.path.insert(0, str(ROOT / "tests"))
        from pgcluster import start_cluster  # test infrastructure, not in the package

        url, stop_cluster = start_cluster(tmp / "pg")
    return f"{url}?schema=load_{uuid.uuid4().hex[:8]}", stop_cluster


def _wait_until_up(url: str) -> None:
    import httpx

    for _ in range(600):  # the server loads the store before it answers
        try:
            if httpx.get(url + "/", timeout=5, trust_env=False).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)


def _serve_and_load(
    target: str, args: argparse.Namespace, ids: list[str], key: str, results: _Results
) -> _Server:
    """Start the server, run the readers alone, then readers, writers and ingest at once."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, target], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url)
        rss0 = _rss_mb(server.pid)
        print(f"server up, RSS {rss0:.0f} MB")

        base_lat, base_codes = _run_readers(url, args.seconds, seed=100)

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
        for _ in procs:
            results.add(q.get(timeout=args.seconds * 10 + 600))
        for p in procs:
            p.join()
        stop.set()
        sampler.join()
        rss_end = _rss_mb(server.pid)
    finally:
        server.terminate()
        t_stop = time.perf_counter()
        try:  # a server holding 1M sites takes a while to free them
            server.wait(300)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        print(f"server stopped {time.perf_counter() - t_stop:.1f} s after SIGTERM")
    return _Server(base_lat, base_codes, rss0, rss_end, samples)


def _check_writes(inv, accepted: list) -> tuple[int, int]:
    """(lost updates, accepted writes missing from the history): every accepted write is in
    the history; the last accepted price is the current one."""
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
    return lost, missing


def _latency_row(what: str, lat: list[float], codes: dict) -> str:
    return (
        f"| {what} | {len(lat):,} | {_pct(lat, 50):.0f} | "
        f"{_pct(lat, 95):.0f} | {_pct(lat, 99):.0f} | {codes} |"
    )


def _print_report(
    args: argparse.Namespace, srv: _Server, res: _Results, fivexx: int, lost: int, missing: int
) -> None:
    peak = max(m for _, m in srv.samples) if srv.samples else float("nan")
    print()
    print(f"| {args.backend} {args.sites:,} sites, {args.seconds:.0f} s | requests | "
          "p50 ms | p95 ms | p99 ms | statuses |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---|")
    print(_latency_row("reads alone (baseline)", srv.base_lat, srv.base_codes))
    print(_latency_row("reads under writes + ingest", res.lat, res.codes))
    if res.wlat:
        print(_latency_row("conditional PATCH", res.wlat, res.wcodes))
    print()
    print(
        f"PATCH accepted {len(res.accepted)}, refused with 412 {res.refused}; "
        f"5xx or broken connections: {fivexx}"
    )
    print(f"lost updates: {lost}; accepted writes missing from history: {missing}")
    for secs, changed, added, ended in res.ingest:
        print(f"scoped update: {secs:.1f} s, changed {changed}, added {added}, ended {ended}")
    for why in res.ingest_failed:
        print(f"scoped update FAILED: {why}")
    print(
        f"server RSS: start {srv.rss0:.0f} MB, peak {peak:.0f} MB, end {srv.rss_end:.0f} MB "
        f"({len(srv.samples)} samples)"
    )
    print(f"reads median {statistics.median(res.lat) * 1000:.0f} ms" if res.lat else "no reads")


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
    target, stop_cluster = _store_target(args.backend, args.pg_url, tmp)
    t = time.perf_counter()
    sites = synthetic_sites(args.sites)
    inv = open_inventory(target)
    inv.apply(sites, None, {"run_id": "load-first"})
    key = inv.add_api_key("load-writer", ["*"])
    print(f"store: {args.sites:,} sites on {args.backend} in {time.perf_counter() - t:.1f} s")

    ids = sites["site_id"].sample(n=min(200, len(sites)), random_state=3).tolist()
    res = _Results()
    srv = _serve_and_load(target, args, ids, key, res)
    lost, missing = _check_writes(open_inventory(target), res.accepted)
    # 5xx and broken connections
    fivexx = sum(v for k, v in res.codes.items() if not isinstance(k, int) or k >= 500)
    fivexx += sum(v for k, v in res.wcodes.items() if not isinstance(k, int) or k >= 500)
    _print_report(args, srv, res, fivexx, lost, missing)
    if stop_cluster:
        stop_cluster()
    if fivexx or lost or missing or res.ingest_failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
