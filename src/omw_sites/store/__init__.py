"""The inventory store: GeoPackage (embedded default) or PostGIS (shared regional server).

``open_inventory(target)`` gives the :class:`Inventory` (updates, history, lifecycle) on the
backend ``target`` names: a ``postgresql://`` URL or a GeoPackage path. The read helpers
below take the same targets and are what maps, reports and the API use; they return only
current site records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omw_sites.layers import RUN_INFO, SITES
from omw_sites.store.base import CURRENT, Backend, StoreError
from omw_sites.store.edits import InventoryError
from omw_sites.store.inventory import Inventory
from omw_sites.store.update import ChangeReport

Target = str | Path | Backend

__all__ = [
    "Backend",
    "ChangeReport",
    "Inventory",
    "InventoryError",
    "StoreError",
    "default_target",
    "display_target",
    "list_layers",
    "open_backend",
    "open_inventory",
    "read_layer",
    "read_run_info",
    "read_sites",
]

_OPEN: dict[str, Backend] = {}


def is_url(target: Any) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def default_target() -> str:
    """``OMW_DATABASE_URL`` when set, else the GeoPackage ``OMW_STORE`` path (the rule of
    :func:`omw_sites.config.store_target`)."""
    from omw_sites.config import store_target

    return store_target()


def display_target(target: Target) -> str:
    """The target without a password (for messages)."""
    if isinstance(target, Backend):
        return target.target
    text = str(target)
    if is_url(text) and "@" in text:
        head, tail = text.split("@", 1)
        scheme, _, cred = head.partition("://")
        user = cred.split(":", 1)[0]
        return f"{scheme}://{user}@{tail}"
    return text


def open_backend(target: Target) -> Backend:
    """The backend for a GeoPackage path, a ``postgresql://`` URL (``?schema=`` selects
    the schema) or an already open backend."""
    if isinstance(target, Backend):
        return target
    if is_url(target):
        key = str(target)
        if key not in _OPEN:
            from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

            from omw_sites.store.postgis import PostGISBackend

            parts = urlsplit(key)
            query = dict(parse_qsl(parts.query))
            schema = query.pop("schema", "public")
            url = urlunsplit(parts._replace(query=urlencode(query)))
            _OPEN[key] = PostGISBackend(url, schema=schema)
        return _OPEN[key]
    from omw_sites.store.gpkg_backend import GeoPackageBackend

    return GeoPackageBackend(Path(target))


def open_inventory(target: Target | None = None) -> Inventory:
    return Inventory(open_backend(target if target is not None else default_target()))


def list_layers(target: Target) -> list[str]:
    """Names of the layers (spatial and not) in the store."""
    return open_backend(target).list_layers()


def read_layer(target: Target, name: str, **kwargs: Any):
    """Read one layer of the store (EPSG:2180)."""
    return open_backend(target).read_layer(name, **kwargs)


def read_sites(
    target: Target, include_ended: bool = False, where: str | None = None, **kwargs: Any
):
    """Read the current site records (all records with ``include_ended``), EPSG:2180."""
    backend = open_backend(target)
    if SITES not in backend.list_layers():
        msg = f"store {display_target(target)} holds no sites yet; run `omw-sites run` first"
        raise StoreError(msg)
    cond = [] if include_ended else [CURRENT]
    if where:
        cond.append(f"({where})")
    return backend.read_layer(SITES, where=" AND ".join(cond) or None, **kwargs)


def read_run_info(target: Target) -> dict[str, Any]:
    """Run metadata of the latest run: run id, time, profiles, data dates, changes."""
    backend = open_backend(target)
    if RUN_INFO not in backend.list_layers():
        return {}
    df = backend.read_layer(RUN_INFO, read_geometry=False)
    return {k: json.loads(v) for k, v in zip(df["key"], df["value"], strict=True)}
