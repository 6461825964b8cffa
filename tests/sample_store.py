"""A small synthetic store with the exact site-table schema, for fast API and map tests.

End-to-end tests use the real pipeline on a generated region (``conftest.demo_store``);
this factory only exists so the web edge can be tested without running the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely import box, linestrings, points

from omw_sites.layers import (
    PROFILES_DEFAULT,
    REFERENCE_COLUMNS,
    SITE_COLUMNS,
    WORK_CRS,
    excluded_col,
    rank_col,
    score_col,
)
from omw_sites.store import open_inventory

CENTRE = (636973.0, 486980.0)  # Palace of Culture, EPSG:2180


def make_sample_store(path: str | Path, n: int = 300, seed: int = 0) -> Path:
    """A GeoPackage inventory holding ``sample_data(n, seed)``."""
    path = Path(path)
    path.unlink(missing_ok=True)
    open_inventory(path).apply(*sample_data(n, seed))
    return path


def _blank(rng: np.random.Generator, n: int) -> list[str]:
    rng.uniform(0, 20000, n)  # keep the random sequence the tests were written for
    return [""] * n


# the site table's text columns: column -> (rng, n) -> values; numeric columns are random
_TEXT_FILLS: dict[str, Callable[[np.random.Generator, int], object]] = {
    "site_id": lambda rng, n: [f"S{i:010x}" for i in range(n)],
    "parcel_ids": lambda rng, n: [f"146501_1.{1 + i % 50:04d}.{i + 1}/2" for i in range(n)],
    "teryt": lambda rng, n: rng.choice(["1465011", "1418043", "1421062"], n),
    "gmina": lambda rng, n: ["Warszawa"] * n,
    "ownership": lambda rng, n: rng.choice(["municipal", "state", "private"], n),
    "zoning_symbol": lambda rng, n: [f"{i % 9 + 1}P/U" for i in range(n)],
    "zoning_class": lambda rng, n: ["P/U"] * n,
    "plan_zone": lambda rng, n: ["SP"] * n,
    "planning_instrument": lambda rng, n: ["mpzp"] * n,
    "junction_name": lambda rng, n: ["Konotopa"] * n,
    "derived_from": _blank,
    "kw_numbers": _blank,
    "zoning_classes": _blank,
    "zoning_plan": _blank,
    "junction_road": lambda rng, n: ["A2"] * n,
    "airport_name": lambda rng, n: ["Lotnisko Chopina w Warszawie (WAW)"] * n,
    "station_name": lambda rng, n: ["Warszawa Zachodnia"] * n,
    "rail_freight_name": lambda rng, n: ["Warszawa Gołąbki Towarowa"] * n,
    "national_road": lambda rng, n: ["7"] * n,
    "voivodeship_road": lambda rng, n: ["631"] * n,
    "access_road_class": lambda rng, n: rng.choice(["L", "D", "Z"], n),
}
# columns measured from issue 21 on draw from a stream of their own: the values of the
# earlier columns, and the hashes recorded from them, stay what they were
_LATER = tuple(SITE_COLUMNS)[tuple(SITE_COLUMNS).index("population_30min") :]


def sample_data(n: int = 300, seed: int = 0) -> tuple[gpd.GeoDataFrame, dict, dict]:
    """(sites, reference layers, run info) with the exact site-table schema."""
    rng = np.random.default_rng(seed)
    x = CENTRE[0] + rng.uniform(-30000, 30000, n)
    y = CENTRE[1] + rng.uniform(-25000, 25000, n)
    side = rng.uniform(50, 500, n)
    geom = box(x, y, x + side, y + side * rng.uniform(0.5, 1.5, n))
    data: dict[str, object] = {}
    later = np.random.default_rng([seed, 21])
    for col, (unit, _) in SITE_COLUMNS.items():
        r = later if col in _LATER else rng
        fill = _TEXT_FILLS.get(col)
        if fill is not None:
            data[col] = fill(r, n)
        elif unit == "share":
            data[col] = r.uniform(0, 1, n).round(3)
        else:
            data[col] = r.uniform(0, 20000, n).round(1)
    sites = gpd.GeoDataFrame(data, geometry=geom, crs=WORK_CRS)
    sites["area_ha"] = (sites.area / 1e4).round(4)
    for p in PROFILES_DEFAULT:
        score = rng.uniform(0, 1, n)
        excluded = rng.uniform(0, 1, n) < 0.2
        score[excluded] = np.nan
        sites[score_col(p)] = score
        rank = pd.Series(score).rank(ascending=False, method="min").fillna(0).astype(int)
        sites[rank_col(p)] = rank.to_numpy()
        sites[excluded_col(p)] = np.where(excluded, "flood_share >= 0.05", "")
    pts = points(
        CENTRE[0] + rng.uniform(-30000, 30000, 10), CENTRE[1] + rng.uniform(-25000, 25000, 10)
    )
    line = linestrings([[CENTRE[0] - 30000, CENTRE[1]], [CENTRE[0] + 30000, CENTRE[1] + 1000]])
    area = box(CENTRE[0] - 5000, CENTRE[1] - 3000, CENTRE[0] + 5000, CENTRE[1] - 1000)
    geoms = {"point": pts, "line": [line] * 10, "polygon": [area] * 10}
    kinds = {
        "gminy": "polygon",
        "junctions": "point",
        "stations": "point",
        "airports": "point",
        "rail": "line",
        "utilities": "line",
        "substations": "point",
        "flood": "polygon",
        "natura2000": "polygon",
        "roads_main": "line",
        "water": "polygon",
    }
    reference = {}
    for name, cols in REFERENCE_COLUMNS.items():
        values = {c: [f"{c}-{i}" for i in range(10)] for c in cols}
        if name == "utilities":
            values["network"] = ["water", "sewer", "power", "gas", "telecom"] * 2
        if name == "substations":
            values["capacity_mw"] = list(rng.uniform(5, 40, 10).round(1))
        reference[name] = gpd.GeoDataFrame(values, geometry=list(geoms[kinds[name]]), crs=WORK_CRS)
    run_info = {
        "run_id": "sample",
        "created": "2026-11-26T00:00:00Z",
        "profiles": [
            {"name": p, "title": p.title(), "hash": "0" * 12, "weights": {}}
            for p in PROFILES_DEFAULT
        ],
        "data_dates": {"parcels": "2026-10-01"},
        "units": {c: u for c, (u, _) in SITE_COLUMNS.items()},
        "columns": {
            c: {"unit": u, "meaning": m, "sources": ["parcels"], "data_date": "2026-10-01"}
            for c, (u, m) in SITE_COLUMNS.items()
        },
    }
    return sites, reference, run_info
