"""Self-contained (offline) Folium maps of the ranked sites, one page per investor profile."""

from omw_sites.maps.build import available_profiles, load_map_data, render_map, write_maps
from omw_sites.maps.compare import render_comparison

__all__ = ["available_profiles", "load_map_data", "render_comparison", "render_map", "write_maps"]
