"""Self-contained (offline) Folium maps of the ranked sites, one page per investor profile."""

from omw_sites.maps.build import available_profiles, load_map_data, render_map, write_maps

__all__ = ["available_profiles", "load_map_data", "render_map", "write_maps"]
