"""``omw-sites apikey add / list / revoke`` as a regional office uses them, on a GeoPackage
and on PostGIS: the key is printed once and stored only as a hash, it opens PATCH for its
gminy and no other, and stops working once revoked."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cli_run import serving
from sample_store import sample_data
from typer.testing import CliRunner

from omw_sites.cli import app
from omw_sites.store import open_inventory

PIASECZNO, RASZYN, WARSZAWA = "1418043", "1421062", "1465011"


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def omw(*args: str) -> Ran:
    """``omw-sites …`` in this process (typer's runner: stdout and stderr apart), with a
    wide terminal so tables do not wrap."""
    res = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return Ran(res.exit_code, res.stdout, res.stderr)


@pytest.fixture(params=["gpkg", "postgis"])
def store(request, tmp_path) -> Iterator[str]:
    """An inventory of 40 sample sites in three gminy, on each backend."""
    if request.param == "gpkg":
        target = str(tmp_path / "inventory.gpkg")
    else:
        url = request.getfixturevalue("postgis_url")
        target = f"{url}?schema=k_{uuid.uuid4().hex[:10]}"
    sites, reference, info = sample_data(40, seed=5)
    inv = open_inventory(target)
    inv.apply(sites, reference, info)
    inv.backend.close()
    yield target
    if request.param == "postgis":
        import psycopg

        url, _, query = target.partition("?")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{query.removeprefix("schema=")}" CASCADE')


def _site_of(store: str, teryt: str) -> str:
    from omw_sites.store import read_sites

    sites = read_sites(store, read_geometry=False)
    return str(sites.loc[sites["teryt"] == teryt, "site_id"].iloc[0])


def _add(store: str, name: str, *gminy: str) -> str:
    args = [a for g in gminy for a in ("--gmina", g)]
    res = omw("apikey", "add", name, *args, "--store", store)
    assert res.returncode == 0, res.stderr
    assert "shown once" in res.stderr
    key = res.stdout.strip()  # the key alone on stdout, for a script to capture
    assert key.startswith("omw_") and len(key) > 40 and "\n" not in key, res.stdout
    return key


def _stored_bytes(store: str) -> bytes:
    """Everything the store holds: the GeoPackage's files, or every row of every table of
    the PostGIS schema as text."""
    if "://" not in store:
        return b"".join(p.read_bytes() for p in Path(store).parent.glob(Path(store).name + "*"))
    import psycopg

    url, _, query = store.partition("?")
    schema = query.removeprefix("schema=")
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
        ]
        assert "api_keys" in tables
        rows = [
            str(r[0])
            for t in tables
            for r in conn.execute(f'SELECT t::text FROM "{schema}"."{t}" t')  # noqa: S608
        ]
    return "\n".join(rows).encode()


def _patch(url: str, site: str, key: str | None, note: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.patch(
        f"{url}/collections/sites/items/{site}",
        json={"notes": note},
        headers=headers,
        timeout=30,
        trust_env=False,
    )


def test_add_list_scope_and_revoke(store, tmp_path):
    piaseczno = _add(store, "COI Piaseczno", PIASECZNO)
    two = _add(store, "Biuro Raszyn-Warszawa", RASZYN, WARSZAWA)
    assert piaseczno != two

    # shown once: only the SHA-256 is kept, never the key
    stored = _stored_bytes(store)
    for key in (piaseczno, two):
        assert key.encode() not in stored
        assert hashlib.sha256(key.encode()).hexdigest().encode() in stored

    # the list names holders and gminy, never the keys
    res = omw("apikey", "list", "--store", store)
    assert res.returncode == 0, res.stderr
    assert "COI Piaseczno" in res.stdout and "Biuro Raszyn-Warszawa" in res.stdout
    assert PIASECZNO in res.stdout and f"{RASZYN},{WARSZAWA}" in res.stdout
    assert piaseczno not in res.stdout and two not in res.stdout
    assert hashlib.sha256(piaseczno.encode()).hexdigest() not in res.stdout

    # one active key per holder; TERYT codes are checked
    res = omw("apikey", "add", "COI Piaseczno", "--gmina", PIASECZNO, "--store", store)
    assert res.returncode == 2 and "active key named 'COI Piaseczno' exists" in res.stderr
    res = omw("apikey", "add", "Nobody", "--gmina", "14180", "--store", store)
    assert res.returncode == 2 and "7-digit TERYT" in res.stderr
    assert "Traceback" not in res.stderr

    site_p, site_r, site_w = (_site_of(store, t) for t in (PIASECZNO, RASZYN, WARSZAWA))
    with serving(store, log=tmp_path / "serve.log") as (url, _):
        # each key opens its own gminy's sites, and no other's
        assert _patch(url, site_p, piaseczno, "p1").status_code == 200
        assert _patch(url, site_r, piaseczno, "p2").status_code == 403
        assert _patch(url, site_w, piaseczno, "p3").status_code == 403
        assert _patch(url, site_r, two, "r1").status_code == 200
        assert _patch(url, site_w, two, "w1").status_code == 200
        assert _patch(url, site_p, two, "x").status_code == 403
        assert _patch(url, site_p, None, "x").status_code == 401

        res = omw("apikey", "revoke", "COI Piaseczno", "--store", store)
        assert res.returncode == 0, res.stderr
        assert "revoked 1 key(s) of COI Piaseczno" in res.stderr
        # revoked while the server runs: refused from the next request on
        assert _patch(url, site_p, piaseczno, "p4").status_code == 401
        assert _patch(url, site_r, two, "r2").status_code == 200  # the other key stays

    from omw_sites.store import read_sites

    notes = read_sites(store, read_geometry=False).set_index("site_id")["notes"]
    assert (notes[site_p], notes[site_r], notes[site_w]) == ("p1", "r2", "w1")

    # the revoked key stays in the list, with its revocation time
    res = omw("apikey", "list", "--store", store)
    assert res.returncode == 0, res.stderr
    rows = {line.split("│")[1].strip(): line for line in res.stdout.splitlines() if "│" in line}
    assert rows["COI Piaseczno"].count("Z │") == 2  # created_at and revoked_at
    assert rows["Biuro Raszyn-Warszawa"].count("Z │") == 1  # still active
    res = omw("apikey", "revoke", "COI Piaseczno", "--store", store)
    assert res.returncode == 2 and "no active key named 'COI Piaseczno'" in res.stderr

    # a holder may get a new key after revocation; the old one stays dead
    again = _add(store, "COI Piaseczno", PIASECZNO)
    with serving(store, log=tmp_path / "serve2.log") as (url, _):
        assert _patch(url, site_p, again, "p5").status_code == 200
        assert _patch(url, site_p, piaseczno, "p6").status_code == 401
