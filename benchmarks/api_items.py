"""Latency of the read API's item pages on a generated store: server time and loopback round trip.

Run: ``python benchmarks/api_items.py [--sites 20000] [--requests 30]``. The server runs in
its own process (uvicorn, as ``omw-sites serve`` runs it); the client is httpx over
127.0.0.1. "server ms" is the app's own ``Server-Timing: app;dur=`` (routing, validation,
selection, body assembly); "round trip ms" adds HTTP, loopback transfer and httpx's read.
The baseline row is ``GeoDataFrame.to_json()`` of the same 1,000 features in-process: what
building the page per request with geopandas would cost before any HTTP.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from sample_store import make_sample_store  # noqa: E402

from omw_sites.store import read_sites  # noqa: E402

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
ITEMS = "/collections/sites/items"
EPSG2180 = "http://www.opengis.net/def/crs/EPSG/0/2180"
CASES: list[tuple[str, str]] = [
    ("1,000 features, storage order", "/collections/sites/items?limit=1000&offset=5000"),
    ("1,000 features, profile order", "/collections/sites/items?limit=1000&profile=logistics"),
    ("1,000 features, bbox", "/collections/sites/items?limit=1000&bbox=20.85,52.10,21.15,52.35"),
    (
        "1,000 features, bbox + profile",
        "/collections/sites/items?limit=1000&bbox=20.85,52.10,21.15,52.35&profile=office",
    ),
    ("1,000 features, crs=EPSG:2180", f"/collections/sites/items?limit=1000&crs={EPSG2180}"),
    (
        "1,000 features, CQL2 filter + sortby",
        "/collections/sites/items?limit=1000&sortby=-score_logistics,area_ha&filter="
        + quote("area_ha > 1 AND teryt IN ('1465011','1418043') AND NOT score_logistics IS NULL"),
    ),
    (
        "1,000 features, CQL2 S_INTERSECTS + sortby + properties",
        "/collections/sites/items?limit=1000&sortby=-score_office&properties=site_id,"
        "score_office,rank_office&filter="
        + quote("S_INTERSECTS(geometry,BBOX(20.85,52.10,21.15,52.35)) AND area_ha > 1"),
    ),
    ("1,000 features, properties=site_id", ITEMS + "?limit=1000&properties=site_id"),
    (
        "vector tile z12 (cached after first)",
        "/collections/sites/tiles/WebMercatorQuad/12/2287/1348",
    ),
    ("10 features (default page)", "/collections/sites/items"),
    ("one feature", "/collections/sites/items/S0000000abc"),
    ("collections", "/collections"),
]


def machine() -> str:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {ram:.0f} GiB RAM, Python {sys.version.split()[0]}"


def measure(client: httpx.Client, path: str, n: int) -> tuple[float, float, float, int, int]:
    """Median server ms, median and p90 round-trip ms, bytes and features matched."""
    for _ in range(3):  # warm-up (the EPSG:2180 view is built on first use)
        client.get(path).raise_for_status()
    server, total = [], []
    size = matched = 0
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)
        total.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        server.append(float(r.headers["server-timing"].split("dur=")[1]))
        size = len(r.content)
        matched = int(r.json().get("numberMatched", 1)) if "items" in path else 0
    p90 = statistics.quantiles(total, n=10)[-1]
    return statistics.median(server), statistics.median(total), p90, size, matched


def baseline_to_json(store: Path, n: int) -> float:
    page = read_sites(store).to_crs("OGC:CRS84").iloc[5000:6000]
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        page.to_json()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=20_000, help="sites in the generated store")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per case (≥20)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = make_sample_store(Path(tmp) / "omw_sites.gpkg", n=args.sites)
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(store)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=60, trust_env=False) as client:
                deadline = time.monotonic() + 120
                while True:  # bounded wait for the server to load the store and listen
                    try:
                        client.get("/conformance").raise_for_status()
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline or proc.poll() is not None:
                            raise
                        time.sleep(0.05)
                startup = time.perf_counter() - t0
                rows = [(label, *measure(client, path, args.requests)) for label, path in CASES]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        base_ms = baseline_to_json(store, max(5, args.requests // 3))

    print(f"# API item pages — {args.sites:,} sites, {args.requests} requests per case")
    print(f"# {machine()}; server start-up incl. store load: {startup:.2f} s\n")
    print(
        f"| {'case':<56} | {'matched':>7} | {'KiB':>6} | {'server ms':>9} "
        f"| {'round trip ms':>13} | {'p90 ms':>7} |"
    )
    print(f"|{'-' * 58}|{'-' * 8}:|{'-' * 7}:|{'-' * 10}:|{'-' * 14}:|{'-' * 8}:|")
    for label, server, total, p90, size, matched in rows:
        print(
            f"| {label:<56} | {matched or '':>7} | {size / 1024:>6.0f} | {server:>9.2f} "
            f"| {total:>13.2f} | {p90:>7.2f} |"
        )
    storage = rows[0][1]
    print(
        f"\nbaseline gdf.to_json() of the same 1,000 features, in-process: {base_ms:.1f} ms "
        f"({base_ms / storage:.0f}x the server time of the storage-order page)"
    )


if __name__ == "__main__":
    main()
