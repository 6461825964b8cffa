"""This API against pygeoapi serving the same sites, same machine, same run.

Run: ``python benchmarks/api_pygeoapi.py [--sites 20000] [--requests 30] [--seconds 10]``.

pygeoapi is installed from PyPI into its own venv, ``benchmarks/_work/pygeoapi-venv``
(created on first run, git-ignored), so the project venv stays clean. It serves a copy of
the store's ``sites`` layer with its ``SQLiteGPKG`` provider (SQLite + SpatiaLite's
``mod_spatialite``, Debian package ``libsqlite3-mod-spatialite``); that provider neither
reprojects nor sorts nor takes CQL2, so its copy is written in CRS84 (what both answer in)
and case (b) compares our CQL2 filter + sortby page with pygeoapi's closest equivalent, a
property-equality filter page without sorting. Both servers are uvicorn with one worker on
127.0.0.1 (pygeoapi's Starlette app), started and measured one after the other.

Measured per server: (a) a 1,000-feature bbox page, (b) a filtered (and for us sorted)
100-feature page — median, p95 of ``--requests`` round trips after 3 warm-ups; (c) sustained
load: ``--clients`` concurrent httpx clients asking for 100-feature pages at varying offsets
for ``--seconds`` s: requests/s, p50, p99; (d) server RSS (VmRSS and peak VmHWM) after all.
Client and server share the 2 cores, so (c) is a lower bound for either server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pyogrio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from sample_store import make_sample_store  # noqa: E402

WORK = ROOT / "benchmarks" / "_work" / "pygeoapi"
VENV = ROOT / "benchmarks" / "_work" / "pygeoapi-venv"
PYGEOAPI_PACKAGES = ["pygeoapi", "starlette", "uvicorn"]
BBOX = "20.85,52.10,21.15,52.35"  # lon/lat, around the centre of the generated region
TERYT = "1465011"  # one of the three TERYT codes of the sample store
OUR_SERVER = textwrap.dedent(
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
PYGEOAPI_CONFIG = """\
server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  language: en-US
  limits: {{default_items: 10, max_items: 10000}}
  map: {{url: "https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png", attribution: OSM}}
logging:
  level: ERROR
metadata:
  identification:
    title: omw-sites benchmark
    description: the sites layer of omw-sites
    keywords: [sites]
    keywords_type: theme
    terms_of_service: https://creativecommons.org/licenses/by/4.0/
    url: http://127.0.0.1
  license: {{name: CC-BY 4.0, url: https://creativecommons.org/licenses/by/4.0/}}
  provider: {{name: omw-sites, url: http://127.0.0.1}}
  contact: {{name: benchmark, position: none, address: none, city: Warsaw,
            stateorprovince: none, postalcode: "00-001", country: PL, phone: "+48",
            fax: "+48", email: none@example.org, url: http://127.0.0.1, hours: none,
            instructions: none, role: pointOfContact}}
resources:
  sites:
    type: collection
    title: sites
    description: investment sites
    keywords: [sites]
    extents:
      spatial: {{bbox: [14.07, 49.0, 24.16, 54.84], crs: http://www.opengis.net/def/crs/OGC/1.3/CRS84}}
    providers:
      - type: feature
        name: SQLiteGPKG
        data: {data}
        id_field: site_id
        table: sites
"""


@dataclass
class Server:
    name: str
    base: str
    proc: subprocess.Popen[str]
    items: str  # path of the sites items
    suffix: str  # extra query for every items request


def machine() -> str:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {ram:.0f} GiB RAM, Python {sys.version.split()[0]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SPATIALITE_PROBE = (
    "import sqlite3; c = sqlite3.connect(':memory:'); c.enable_load_extension(True); "
    "c.execute(\"select load_extension('mod_spatialite')\")"
)


def can_load_spatialite(python: str | Path) -> bool:
    """Whether ``python``'s sqlite3 loads extensions and finds mod_spatialite."""
    probe = [str(python), "-c", SPATIALITE_PROBE]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def ensure_pygeoapi_venv() -> Path:
    """pygeoapi's own venv (created and filled from PyPI on first use); its python.

    The SQLiteGPKG provider loads SpatiaLite into sqlite3: the venv is made from a Python
    whose sqlite3 can load extensions (pyenv builds often cannot; Debian's can).
    """
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import pygeoapi, starlette, uvicorn"]
    if python.exists() and can_load_spatialite(python):
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            return python
    bases = [b for b in (sys.executable, "/usr/bin/python3") if Path(b).exists()]
    base = next((b for b in bases if can_load_spatialite(b)), None)
    if base is None:
        msg = (
            "no Python here can load SpatiaLite into sqlite3 (pygeoapi's SQLiteGPKG provider "
            "needs it): install libsqlite3-mod-spatialite and a Python whose sqlite3 has "
            "enable_load_extension"
        )
        raise SystemExit(msg)
    print(f"creating {VENV} from {base}; pip install {' '.join(PYGEOAPI_PACKAGES)}", flush=True)
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", *PYGEOAPI_PACKAGES]
    subprocess.run(pip, check=True, timeout=900)
    return python


def pygeoapi_version(python: Path) -> str:
    out = subprocess.run(
        [str(python), "-c", "import pygeoapi; print(pygeoapi.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def wait_ready(base: str, path: str, proc: subprocess.Popen[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=30, trust_env=False) as client:
        while True:  # bounded wait for the server to load and listen
            try:
                client.get(path).raise_for_status()
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)


def start_ours(store: Path) -> Server:
    proc = subprocess.Popen(
        [sys.executable, "-c", OUR_SERVER, str(store)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, "/conformance", proc)
    return Server("omw-sites", base, proc, "/collections/sites/items", "")


def start_pygeoapi(python: Path, store: Path) -> Server:
    """pygeoapi on a CRS84 copy of the store's sites layer (its provider does not reproject)."""
    copy = WORK / "sites_crs84.gpkg"
    copy.unlink(missing_ok=True)
    sites = pyogrio.read_dataframe(store, layer="sites").to_crs("EPSG:4326")
    pyogrio.write_dataframe(sites, copy, layer="sites", driver="GPKG")
    port = free_port()
    config = WORK / "pygeoapi-config.yml"
    config.write_text(PYGEOAPI_CONFIG.format(port=port, data=copy))
    openapi = WORK / "pygeoapi-openapi.yml"
    bin_dir = python.parent
    env = {
        **os.environ,
        "PYGEOAPI_CONFIG": str(config),
        "PYGEOAPI_OPENAPI": str(openapi),
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
    }
    subprocess.run(
        [
            str(bin_dir / "pygeoapi"),
            "openapi",
            "generate",
            str(config),
            "--output-file",
            str(openapi),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [str(python), "-m", "uvicorn", "pygeoapi.starlette_app:APP", "--host", "127.0.0.1"]
        + ["--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env,
        cwd=WORK,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, "/collections/sites?f=json", proc)
    return Server("pygeoapi", base, proc, "/collections/sites/items", "&f=json")


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def latency(client: httpx.Client, url: str, n: int) -> dict[str, float]:
    """Median and p95 round trip (ms) of ``n`` requests after 3 warm-ups; features returned."""
    for _ in range(3):
        client.get(url).raise_for_status()
    times = []
    returned = 0
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        returned = len(r.json()["features"])
    return {
        "p50": statistics.median(times),
        "p95": statistics.quantiles(times, n=20)[-1],
        "n": returned,
    }


async def load(server: Server, clients: int, seconds: float, n_sites: int) -> dict[str, float]:
    """``clients`` concurrent clients, each looping over 100-feature pages for ``seconds``."""
    times: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def worker(k: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=server.base, timeout=60, trust_env=False) as c:
            i = k
            while time.monotonic() < stop:
                offset = (i * 997) % max(1, n_sites - 100)
                url = f"{server.items}?limit=100&offset={offset}{server.suffix}"
                t0 = time.perf_counter()
                i += clients
                try:
                    r = await c.get(url)
                except httpx.HTTPError:  # a dropped connection counts as a failed request
                    errors += 1
                    continue
                elapsed = (time.perf_counter() - t0) * 1000
                if r.status_code == 200:
                    times.append(elapsed)
                else:
                    errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(clients)))
    wall = time.perf_counter() - t0
    cuts = statistics.quantiles(times, n=100)
    return {
        "rps": len(times) / wall,
        "p50": statistics.median(times),
        "p99": cuts[98],
        "errors": errors,
    }


def measure(server: Server, args: argparse.Namespace, filtered: str) -> dict[str, object]:
    with httpx.Client(base_url=server.base, timeout=120, trust_env=False) as client:
        bbox = latency(
            client, f"{server.items}?bbox={BBOX}&limit=1000{server.suffix}", args.requests
        )
        filt = latency(client, filtered + server.suffix, args.requests)
    sustained = asyncio.run(load(server, args.clients, args.seconds, args.sites))
    rss, hwm = rss_mib(server.proc.pid)
    return {"bbox": bbox, "filter": filt, "load": sustained, "rss": rss, "hwm": hwm}


def stop(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=20_000, help="sites in the generated store")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per case (≥20)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the load test")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients under load")
    args = parser.parse_args()
    python = ensure_pygeoapi_venv()
    WORK.mkdir(parents=True, exist_ok=True)
    store = make_sample_store(WORK / "omw_sites.gpkg", n=args.sites)
    ours_filter = "/collections/sites/items?limit=100&sortby=-score_logistics&filter=" + quote(
        f"teryt = '{TERYT}'"
    )
    theirs_filter = f"/collections/sites/items?limit=100&teryt={TERYT}"

    results = {}
    ours = start_ours(store)
    try:
        results["omw-sites"] = measure(ours, args, ours_filter)
    finally:
        stop(ours)
    theirs = start_pygeoapi(python, store)
    try:
        results["pygeoapi"] = measure(theirs, args, theirs_filter)
    finally:
        stop(theirs)

    version = pygeoapi_version(python)
    print(f"# omw-sites API vs pygeoapi {version} (SQLiteGPKG) — {args.sites:,} sites")
    print(
        f"# {machine()}; {args.requests} requests per latency case; load: {args.clients} "
        f"clients × {args.seconds:.0f} s of 100-feature pages\n"
    )
    print(f"| {'measure':<46} | {'omw-sites':>10} | {'pygeoapi':>10} | {'ratio':>6} |")
    print(f"|{'-' * 48}|{'-' * 11}:|{'-' * 11}:|{'-' * 7}:|")
    a, b = results["omw-sites"], results["pygeoapi"]

    def row(
        label: str, x: float, y: float, fmt: str = "{:.1f}", higher_better: bool = False
    ) -> None:
        ratio = (x / y if higher_better else y / x) if x and y else float("nan")
        print(f"| {label:<46} | {fmt.format(x):>10} | {fmt.format(y):>10} | {ratio:>5.1f}x |")

    bbox_a, bbox_b = a["bbox"], b["bbox"]
    row(
        f"(a) bbox page, {bbox_a['n']:.0f}/{bbox_b['n']:.0f} features: p50 ms",
        bbox_a["p50"],
        bbox_b["p50"],
    )
    row("(a) bbox page: p95 ms", bbox_a["p95"], bbox_b["p95"])
    fa, fb = a["filter"], b["filter"]
    row(f"(b) filter page, {fa['n']:.0f}/{fb['n']:.0f} features: p50 ms", fa["p50"], fb["p50"])
    row("(b) filter page: p95 ms", fa["p95"], fb["p95"])
    la, lb = a["load"], b["load"]
    row("(c) 100-feature pages under load: requests/s", la["rps"], lb["rps"], higher_better=True)
    row("(c) under load: p50 ms", la["p50"], lb["p50"])
    row("(c) under load: p99 ms", la["p99"], lb["p99"])
    row("(d) server RSS after the run, MiB", a["rss"], b["rss"], "{:.0f}")
    row("(d) server peak RSS (VmHWM), MiB", a["hwm"], b["hwm"], "{:.0f}")
    print(f"\nerrors under load: omw-sites {la['errors']}, pygeoapi {lb['errors']}")
    print(
        "(b) omw-sites: CQL2 filter teryt = '…' + sortby=-score_logistics; pygeoapi: "
        "teryt=… property filter, unsorted (SQLiteGPKG supports neither sortby nor CQL2)"
    )
    print("ratio: pygeoapi / omw-sites for times and memory, omw-sites / pygeoapi for requests/s")


if __name__ == "__main__":
    main()
