"""Land: farmland by soil class, forest land and existing buildings (EGiB, BDOT10k).

EGiB land-use contours (``OFU``) say what the land is registered as; soil-class contours
(``OZU`` land use of the classification, ``OZK`` class) say how good the farmland is.
Agricultural land of classes I–III needs a consent to leave agricultural use (ustawa o
ochronie gruntów rolnych i leśnych): time and a fee, unlike classes IV–VI.
"""

from __future__ import annotations

import numpy as np

from omw_sites.criteria.geometry import overlap_pairs

# EGiB land uses of agricultural land (grunty rolne, OFU of the 2021 regulation; S-R and
# the ASCII "L" for Ł as older exports write them)
AGRICULTURAL_OFU = frozenset({"R", "S", "S-R", "Ł", "L", "PS", "BR", "WSR", "W", "LZR"})
FOREST_OFU = frozenset({"LS", "LZ"})  # forests, wooded and bushy land
# soil classification land uses of farmland (arable, meadow, pasture, orchard)
AGRICULTURAL_OZU = frozenset({"R", "Ł", "L", "PS", "S"})
CLASS_I_III = frozenset({"I", "II", "IIIA", "IIIB", "III"})
CLASS_IV_VI = frozenset({"IVA", "IVB", "IV", "V", "VI", "VIZ"})
# a site is brownfield when buildings cover at least this much of it (m²): a neighbour's
# eave over the boundary is not a building on the site
BROWNFIELD_MIN_M2 = 20.0


def tiled_share(geoms: np.ndarray, areas: np.ndarray, polys: np.ndarray) -> np.ndarray:
    """Share (0..1) of each geometry covered by ``polys`` that do not overlap each other
    (contours of a partition, building footprints): overlaps summed, no dissolve, which
    would merge a gmina's farmland into one huge polygon."""
    left, _, inter = overlap_pairs(geoms, areas, polys)
    total = np.bincount(left, weights=inter, minlength=len(geoms))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(areas > 0, total / areas, 0.0)
    return np.clip(share, 0.0, 1.0)


def _codes(values: np.ndarray) -> np.ndarray:
    return np.array([str(v).strip().upper() for v in values], dtype=object)


def land_use_shares(
    geoms: np.ndarray, areas: np.ndarray, contours: np.ndarray, ofu: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Share of each site registered as agricultural land, and as forest land."""
    code = _codes(ofu)
    agri = np.isin(code, list(AGRICULTURAL_OFU))
    forest = np.isin(code, list(FOREST_OFU))
    return (
        tiled_share(geoms, areas, contours[agri]),
        tiled_share(geoms, areas, contours[forest]),
    )


def soil_shares(
    geoms: np.ndarray, areas: np.ndarray, contours: np.ndarray, ozu: np.ndarray, ozk: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Share of each site on farmland soil of classes I–III, and of classes IV–VI."""
    use, cls = _codes(ozu), _codes(ozk)
    farm = np.isin(use, list(AGRICULTURAL_OZU)) | (use == "")
    good = farm & np.isin(cls, list(CLASS_I_III))
    poor = farm & np.isin(cls, list(CLASS_IV_VI))
    return (
        tiled_share(geoms, areas, contours[good]),
        tiled_share(geoms, areas, contours[poor]),
    )


def buildings_on_site(
    geoms: np.ndarray, areas: np.ndarray, footprints: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Share of each site covered by building footprints, and whether it is brownfield."""
    share = tiled_share(geoms, areas, footprints)
    return share, share * areas >= BROWNFIELD_MIN_M2
