"""Options shared by the commands: the store every command reads or writes."""

from __future__ import annotations

from typing import Annotated

import typer

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="inventory: GeoPackage path or postgresql:// URL "
        "(default: OMW_DATABASE_URL, else OMW_STORE = data/processed/omw_sites.gpkg)",
    ),
]


def resolve_store(value: str | None) -> str:
    """The store target a command works on (``--store`` or the settings' default)."""
    from omw_sites.store import default_target

    return value if value else default_target()
