"""API write keys: who may change which gminy's sites through the API. Only each key's
SHA-256 is stored (table ``api_keys``); the key itself is shown once, when made.

A key's scope (column ``teryt``) is a list of gmina TERYT codes, ``*`` (every gmina), or
``region``: the regional investor-service office, which may change any site and is the
only holder that records, matches and moves investor enquiries and reads the
investors' confidential contacts (:mod:`omw_sites.api.routes.enquiries`)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

import pandas as pd

from omw_sites.store.base import (
    API_KEYS,
    API_KEYS_COLUMNS,
    Backend,
    StoreError,
    empty_table,
    utc_now,
)
from omw_sites.store.edits import InventoryError


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


#: the scope of the regional office's key
REGION = "region"


def may_edit(gminy: frozenset[str], teryt: str) -> bool:
    """Whether a key for ``gminy`` may change a site of gmina ``teryt``."""
    return "*" in gminy or REGION in gminy or str(teryt) in gminy


def is_regional(gminy: frozenset[str]) -> bool:
    """Whether a key of scope ``gminy`` is the regional office's."""
    return REGION in gminy


def api_keys(backend: Backend) -> pd.DataFrame:
    """Every key ever made (name, gminy, created, revoked) — hashes, not keys; none if the
    store or the table does not exist. A store that cannot be read is an error: a first
    load keeps these rows and must not drop the keys it could not read."""
    try:
        layers = backend.list_layers()
    except StoreError:
        if not backend.exists():  # raises if the store cannot be read at all
            return empty_table(API_KEYS_COLUMNS)
        raise
    if API_KEYS in layers:
        return pd.DataFrame(backend.read_layer(API_KEYS, read_geometry=False))
    return empty_table(API_KEYS_COLUMNS)


def add_api_key(backend: Backend, name: str, teryt: Sequence[str]) -> str:
    """Create a write key for ``name`` limited to the gminy ``teryt`` (``["*"]``: every
    gmina; ``["region"]``: the regional office). Returns the key — shown once; only its
    SHA-256 is stored."""
    name = str(name).strip()
    if not name:
        raise InventoryError("a key needs the name of who holds it", "name")
    codes = sorted(set(teryt))
    if codes != [REGION] and (
        not codes or any(c != "*" and not (c.isdigit() and len(c) == 7) for c in codes)
    ):
        msg = f"gminy must be 7-digit TERYT codes or '*' (or the scope 'region' alone), not {codes}"
        raise InventoryError(msg, "teryt")
    keys = api_keys(backend)
    if keys.loc[keys["name"] == name, "revoked_at"].isna().any():
        raise InventoryError(f"an active key named {name!r} exists; revoke it first", "name")
    key = "omw_" + secrets.token_urlsafe(32)
    row = pd.DataFrame(
        [
            {
                "name": name,
                "key_hash": key_hash(key),
                "teryt": ",".join(codes),
                "created_at": utc_now(),
                "revoked_at": None,
            }
        ],
        columns=list(API_KEYS_COLUMNS),
    ).astype(object)
    backend.init()
    with backend.transaction() as tx:
        tx.insert(API_KEYS, row)
    return key


def revoke_api_key(backend: Backend, name: str) -> int:
    """Revoke the active key(s) of ``name``; returns how many."""
    keys = api_keys(backend)
    active = keys[(keys["name"] == name) & keys["revoked_at"].isna()]
    if active.empty:
        raise InventoryError(f"no active key named {name!r}", "name", status=404)
    rows = pd.DataFrame({"key_hash": active["key_hash"].to_numpy(), "revoked_at": utc_now()})
    with backend.transaction() as tx:
        tx.update(API_KEYS, "key_hash", rows.astype(object))
    return len(active)


def authorise(backend: Backend, key: str | None) -> tuple[str, frozenset[str]] | None:
    """(holder, gminy) of an active key, or None for a missing/unknown/revoked key."""
    if not key:
        return None
    digest = key_hash(key)
    keys = api_keys(backend)
    for row in keys[keys["revoked_at"].isna()].itertuples():
        if hmac.compare_digest(str(row.key_hash), digest):
            return str(row.name), frozenset(str(row.teryt).split(","))
    return None
