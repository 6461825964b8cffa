"""The inventory store: GeoPackage by default (PostGIS follows in the inventory issue)."""

from omw_sites.store.gpkg import (
    list_layers,
    read_layer,
    read_run_info,
    read_sites,
    write_store,
)

__all__ = ["list_layers", "read_layer", "read_run_info", "read_sites", "write_store"]
