"""Options shared by the commands: the store every command reads or writes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from omw_sites.config import STORE_RULE, store_target

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help=f"inventory: GeoPackage path or postgresql:// URL (default: {STORE_RULE})",
    ),
]


def resolve_store(value: str | None, out_dir: Path | None = None) -> str:
    """The store target a command works on (:func:`omw_sites.config.store_target`)."""
    return store_target(value, out_dir)
