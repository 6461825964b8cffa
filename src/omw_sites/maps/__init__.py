"""Self-contained (offline) Folium maps of the ranked sites, one page per investor profile."""

from omw_sites.maps.comparison_map import render_comparison, write_comparison
from omw_sites.maps.map_data import available_profiles, load_map_data
from omw_sites.maps.profile_map import render_map, write_index, write_maps

__all__ = [
    "available_profiles",
    "load_map_data",
    "render_comparison",
    "render_map",
    "write_comparison",
    "write_index",
    "write_maps",
]
