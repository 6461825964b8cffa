"""Shared fixtures: paths to the real fixtures, a small generated region and its store."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
IN_CI = os.environ.get("CI", "").lower() == "true"
sys.path.insert(0, str(Path(__file__).parent))  # tests/sample_store.py


def need(condition: bool, why: str) -> None:
    """Skip locally, fail in CI: a missing service or fixture is a CI defect."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required for CI: {why}")
    pytest.skip(why)


CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright's own download is not available


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright, one per test module."""
    need(CHROMIUM.exists(), f"{CHROMIUM} not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "playwright not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


# Under CI=true a skip is a failure, whatever raised it (pytest.skip, importorskip, a
# skipif mark, a module-level skip): in CI every dependency and service is installed, so a
# skip there can only hide a broken build. xfail is not a skip and is left alone.
def _fail_skip_in_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not (IN_CI and report.skipped) or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, where a skip is a failure: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    _fail_skip_in_ci(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    _fail_skip_in_ci(report)
    return report


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    need(FIXTURES.is_dir(), f"real fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory) -> Path:
    """A small generated region (3,000 parcels) in the raw layout."""
    from omw_sites.demo import build_region

    out = tmp_path_factory.mktemp("region") / "raw"
    build_region(out, parcels=3000, seed=7)
    return out


@pytest.fixture(scope="session")
def demo_store(demo_raw, tmp_path_factory) -> Path:
    """The store produced by the real pipeline on ``demo_raw``."""
    from omw_sites.pipeline import run

    out = tmp_path_factory.mktemp("processed")
    return run(demo_raw, out).store


@pytest.fixture(scope="session")
def postgis_url(tmp_path_factory) -> Iterator[str]:
    """A PostGIS database URL: ``OMW_TEST_DATABASE_URL`` or a throw-away local cluster."""
    url = os.environ.get("OMW_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from pgcluster import ClusterUnavailable, check_available, start_cluster

    try:
        check_available()
    except ClusterUnavailable as err:
        need(False, str(err))
    url, stop = start_cluster(tmp_path_factory.mktemp("postgis"))
    try:
        yield url
    finally:
        stop()


# ---------------------------------------------------------------- API test servers
# A test module defines a ``store`` fixture (a GeoPackage or PostGIS target); these serve
# it with a real uvicorn on loopback for the whole module.


@pytest.fixture(scope="module")
def base_url(store) -> Iterator[str]:
    from test_api import running_server

    with running_server(store) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str):
    import httpx

    with httpx.Client(base_url=base_url, timeout=30, trust_env=False) as c:
        yield c


@pytest.fixture(scope="module")
def sites(store):
    from omw_sites.store import read_sites

    return read_sites(store)


@pytest.fixture(params=["gpkg", "postgis"])
def target(request, tmp_path) -> Iterator[str]:
    """A fresh, empty inventory on each backend: a GeoPackage path, or a new schema of the
    PostGIS test database (``postgis_url``); the same tests run against both."""
    if request.param == "gpkg":
        yield str(tmp_path / "inventory.gpkg")
        return
    import uuid

    from omw_sites.store import open_backend

    url = request.getfixturevalue("postgis_url")
    target = f"{url}?schema=t_{uuid.uuid4().hex[:10]}"
    yield target
    open_backend(target).close()
