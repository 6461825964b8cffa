"""Checks that the layers of a raw folder belong to its parcels, before anything is
measured: a boundary layer that holds no gminy, a layer of another region, a plan that
covers none of the parcels. What fails is left out, and the run summary says which file
and why — a wrong download should cost a note, not a wrong ranking.
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import shapely

from omw_sites.layers import APP_GML_DIR, GESUT_GML_DIR, RAW_BY_KEY

# a layer whose every feature lies farther than this from the parcels' bounding box is
# another region's (the region's own junctions, airports and stations lie within it)
FAR_M = 50_000.0
GMINA_TERYT = re.compile(r"^\d{7}$")  # PRG JPT_KOD_JE of a gmina (or a Warsaw district)
UNIT_KIND = {2: "voivodeship", 4: "powiat"}  # TERYT length of the other PRG units
# layers only ever used with what lies on or near a parcel: must touch one
MUST_COVER = ("zoning", "plan_zones")
GML_FOLDER = {"plan_zones": APP_GML_DIR, "utilities": GESUT_GML_DIR}


def _where(key: str, layer: gpd.GeoDataFrame, where: dict[str, str] | None = None) -> str:
    """The file(s) a layer came from, as a person would look for them (``where``: per
    layer, the files the raw folder's discovery found it in)."""
    if where and where.get(key):
        return where[key]
    spec = RAW_BY_KEY.get(key)
    path = spec.path if spec else key
    source = layer["source"].astype(str) if "source" in layer else None
    if key in GML_FOLDER and source is not None and source.str.contains("gml").any():
        gml = f"{GML_FOLDER[key]}/*.gml"
        return gml if (source.str.contains("gml")).all() else f"{path} and {gml}"
    return path


def check_gminy(
    layers: dict[str, gpd.GeoDataFrame],
    absent: dict[str, str],
    notes: list[str],
    where: dict[str, str] | None = None,
) -> None:
    """Keep only gmina units (7-digit TERYT) of the boundary layer, saying what else it held."""
    gminy = layers.get("gminy")
    if gminy is None or not len(gminy):
        return
    teryt = gminy["teryt"].astype(str).str.strip()
    ok = teryt.str.match(GMINA_TERYT).to_numpy()
    if ok.all():
        return
    other = teryt[~ok]
    kinds = sorted({UNIT_KIND.get(len(t), "unit") for t in other})
    examples = ", ".join(f"{t!r}" for t in other.unique()[:3])
    what = (
        f"{len(other)} {' and '.join(kinds)} unit(s) ({examples}) that are not gminy "
        "(TERYT of 7 digits)"
    )
    name = _where("gminy", gminy, where)
    if not ok.any():
        layers["gminy"] = gminy.iloc[:0]
        absent["gminy"] = f"{name} holds no gmina: {what}"
        return
    layers["gminy"] = gminy[ok].reset_index(drop=True)
    notes.append(f"{name}: {what} left out; {int(ok.sum())} gminy kept")


def check_near_parcels(
    layers: dict[str, gpd.GeoDataFrame],
    absent: dict[str, str],
    notes: list[str],
    where: dict[str, str] | None = None,
) -> None:
    """Leave out layers that lie wholly away from the parcels, and plans that cover none.

    Plan ogólny zones are checked per gmina (each APP file is one gmina's plan), so that
    one plan of a gmina far away is left out while the others stay.
    """
    parcels = layers["parcels"]
    x0, y0, x1, y1 = parcels.total_bounds
    region = shapely.box(x0 - FAR_M, y0 - FAR_M, x1 + FAR_M, y1 + FAR_M)
    for key in list(layers):
        layer = layers[key]
        if key == "parcels" or layer is None or not len(layer) or key == "roads_main":
            continue
        geoms = layer.geometry.to_numpy()
        near = shapely.intersects(shapely.envelope(geoms), region)
        if key == "plan_zones" and "teryt" in layer and not near.all():
            far_plan = ~layer.assign(near=near).groupby("teryt")["near"].transform("any").to_numpy()
            if far_plan.any() and not far_plan.all():
                plans = sorted(set(layer["teryt"].astype(str)[far_plan]))
                notes.append(
                    f"{_where(key, layer, where)}: the plan ogólny of gmina {', '.join(plans)} "
                    f"lies more than {FAR_M / 1000:g} km from the parcels: left out"
                )
                layers[key] = layer[~far_plan].reset_index(drop=True)
                continue
        if near.any():
            if key in MUST_COVER and not _covers_a_parcel(parcels, layer):
                why = "covers none of the parcels (another gmina's plan?)"
                _leave_out(key, layer, layers, absent, why, where)
            continue
        gap = shapely.distance(shapely.box(x0, y0, x1, y1), shapely.box(*layer.total_bounds))
        why = f"lies {gap / 1000:,.0f} km from the parcels (another region's data?)"
        _leave_out(key, layer, layers, absent, why, where)


def raster_far_from_parcels(
    dem_path, parcels: gpd.GeoDataFrame, name: str | None = None
) -> str | None:
    """Why the terrain model is left out (it lies wholly away from the parcels), or None."""
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(dem_path) as src:
        bounds = transform_bounds(src.crs, parcels.crs, *src.bounds)
    x0, y0, x1, y1 = parcels.total_bounds
    gap = shapely.distance(shapely.box(x0, y0, x1, y1), shapely.box(*bounds))
    if gap <= 0:
        return None
    return f"{name or RAW_BY_KEY['dem'].path} lies {gap / 1000:,.1f} km from the parcels: left out"


def _leave_out(
    key: str,
    layer: gpd.GeoDataFrame,
    layers: dict[str, gpd.GeoDataFrame],
    absent: dict[str, str],
    why: str,
    where: dict[str, str] | None = None,
) -> None:
    absent[key] = f"{_where(key, layer, where)} {why}: left out"
    layers[key] = layer.iloc[:0]
    if key == "roads" and "roads_main" in layers:
        layers["roads_main"] = layers["roads_main"].iloc[:0]


def _covers_a_parcel(parcels: gpd.GeoDataFrame, zones: gpd.GeoDataFrame) -> bool:
    """Whether any zone intersects any parcel (boxes first, then the shapes)."""
    tree = shapely.STRtree(zones.geometry.to_numpy())
    p, z = tree.query(parcels.geometry.to_numpy())
    if not len(p):
        return False
    step = 100_000  # the exact test on the box pairs, a slice at a time, until one holds
    pg, zg = parcels.geometry.to_numpy(), zones.geometry.to_numpy()
    for i in range(0, len(p), step):
        if np.any(shapely.intersects(pg[p[i : i + step]], zg[z[i : i + step]])):
            return True
    return False
