"""Site segments: rule-based readiness tiers and data-driven clusters described in words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from omw_sites.scoring.explain import _parts, check_words
from omw_sites.scoring.expr import evaluate

if TYPE_CHECKING:
    from omw_sites.scoring.engine import Evaluation

TIERS = ("A", "B", "C")
# words for a segment centroid far above (+) or below (−) the mean of a criterion
WORDS: dict[str, tuple[str, str]] = {
    "area_ha": ("large", "small"),
    "dist_junction_m": ("far from motorways", "motorway-close"),
    "dist_centre_m": ("peripheral", "central"),
    "dist_station_m": ("far from rail stations", "near a rail station"),
    "dist_rail_freight_m": ("far from rail freight", "near rail freight"),
    "dist_airport_m": ("far from the airport", "near the airport"),
    "dist_water_m": ("unserviced", "serviced"),
    "dist_sewer_m": ("unserviced", "serviced"),
    "dist_power_m": ("far from power lines", "near power lines"),
    "dist_gas_m": ("no gas nearby", "gas at hand"),
    "dist_telecom_m": ("no telecom nearby", "telecom at hand"),
    "power_capacity_mw": ("high grid capacity", "low grid capacity"),
    "flood_share": ("flood-prone", "dry"),
    "natura_share": ("in Natura 2000", "outside Natura 2000"),
    "forest_share": ("wooded", "open land"),
    "slope_mean_pct": ("sloping", "flat"),
}
DEFAULT_FEATURES = (
    "area_ha",
    "dist_junction_m",
    "dist_centre_m",
    "dist_station_m",
    "dist_water_m",
    "dist_sewer_m",
    "dist_power_m",
    "slope_mean_pct",
)


def readiness_tiers(ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """Readiness tier and gaps of every site under a profile.

    Checks are the profile's ``[[readiness]]`` rules (default: zoning compatible); the
    profile's minimum area is always one. Tier A: no gap; B: one gap; C: two or more.
    A check a site lacks the data for is a gap too (``"not checked (no data): <gap>"``):
    readiness is what the data shows. The profile's criteria with no value for a site are listed
    after the gaps (``"no data: motorway junction, airport"``, with the site's own
    reason where it has one, e.g. not reachable on the road network); they do not
    change the tier.

    Returns
    -------
    tiers, gaps : arrays of str (``"A"``/``"B"``/``"C"``; gaps joined with ``"; "``)
    """
    from omw_sites.scoring.engine import _blind  # engine imports this module

    prof = ev.profile
    n = len(ev.reason)
    checks = [(c.expr, c.gap) for c in prof.readiness] or [
        ("zoning_compatible", "zoning not compatible")
    ]
    # one column per term of a check ("a and b" has two): the text names only the terms
    # that fail, while the tier counts failed checks
    fails, blinds, groups = [], [], []
    area = np.asarray(ev.columns["area_ha"], dtype=float)
    if prof.min_area_ha > 0:
        fails.append(~(area >= prof.min_area_ha))
        blinds.append(np.zeros(n, dtype=bool))
        groups.append(Check(f"below {prof.min_area_ha:g} ha", ("",)))
    for expr, gap in checks:
        terms = _parts(expr)
        for term in terms:
            ok = np.broadcast_to(np.asarray(evaluate(term, ev.columns), dtype=bool), (n,))
            blind = _blind(term, ev.unknown, n)
            fails.append(~ok | blind)
            blinds.append(blind)
        said = tuple(check_words(t, "en", prof)[1] for t in terms) if len(terms) > 1 else ("",)
        groups.append(Check(gap, said))
    f = np.column_stack(fails) if fails else np.zeros((n, 0), bool)
    b = np.column_stack(blinds) if blinds else np.zeros((n, 0), bool)
    count = np.zeros(n, dtype=int)
    start = 0
    for check in groups:
        count += f[:, start : start + len(check.terms)].any(axis=1)
        start += len(check.terms)
    tiers = np.array(TIERS)[np.minimum(count, 2)]
    # one text per distinct pattern of failed and unknown terms (there are few)
    k = f.shape[1]
    patterns, inv = _patterns(np.concatenate([f, b], axis=1))
    words = np.array(
        [_gap_words(row[:k], row[k:], groups) for row in patterns] + [""], dtype=object
    )
    text = words[inv] if n else np.array([], dtype=object)
    no_data = _no_data_text(ev)
    extra = no_data != ""
    if extra.any():
        head = text[extra]
        text[extra] = np.where(head == "", no_data[extra], head + "; " + no_data[extra])
    return tiers.astype(str), text.astype(str)


@dataclass(frozen=True)
class Check:
    """One readiness check: the profile's words for it failing, and per term of an
    ``and`` check the words for that term failing ("" where there are none)."""

    gap: str
    terms: tuple[str, ...]

    def say(self, hit: Sequence[bool] | np.ndarray) -> list[str]:
        """The words for the terms ``hit`` (failed, or not checked): the profile's own
        words when every term is hit, else each hit term's (as ``explain.site_gaps``)."""
        named = [w for w, h in zip(self.terms, hit, strict=True) if h]
        if len(named) == len(self.terms):
            return [self.gap]
        return list(dict.fromkeys(w or self.gap for w in named))


def _patterns(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a boolean matrix and each row's index among them (rows packed
    into bytes first: one 1-D sort instead of a row-wise one)."""
    packed = np.packbits(flags, axis=1) if flags.shape[1] else np.zeros((len(flags), 1), np.uint8)
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).reshape(-1)
    _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    return flags[first], inv.reshape(-1)


def _gap_words(failed: np.ndarray, blind: np.ndarray, checks: list[Check]) -> str:
    """``"gap; gap; not checked (no data): gap, gap"`` for one pattern of terms."""
    known: list[str] = []
    unknown: list[str] = []
    start = 0
    for check in checks:
        f = failed[start : start + len(check.terms)]
        b = blind[start : start + len(check.terms)]
        start += len(check.terms)
        known += check.say(f & ~b)
        unknown += check.say(b)
    if unknown:
        known.append("not checked (no data): " + ", ".join(unknown))
    return "; ".join(known)


def _no_data_text(ev: Evaluation) -> np.ndarray:
    """Per site: ``"no data: <criteria labels>"`` for the profile's criteria it has no
    value for, with the site's own reason (``layers.SITE_NO_DATA``) where there is one."""
    from omw_sites.layers import SITE_NO_DATA

    n = len(ev.reason)
    out = np.full(n, "", dtype=object)
    if ev.measured is None or ev.measured.all():
        return out
    labels = [c.label or c.name for c in ev.profile.criteria]
    rows = np.flatnonzero(~ev.measured.all(axis=1))
    patterns, inv = _patterns(~ev.measured[rows])
    words = np.array(
        [
            "no data: " + ", ".join(lab for lab, m in zip(labels, p, strict=True) if m)
            for p in patterns
        ],
        dtype=object,
    )
    out[rows] = words[inv]
    own = ev.columns.get(SITE_NO_DATA)
    if own is not None:
        own = np.asarray(own, dtype=object)
        has = (own != "") & (out != "")
        out[has] = out[has] + " (" + own[has] + ")"
    return out


@dataclass(frozen=True)
class Segmentation:
    """Data-driven segments: label per site, chosen k, model scores and descriptions."""

    labels: np.ndarray  # −1 where the site was not segmented (missing values)
    k: int
    method: str
    scores: dict[int, float]  # silhouette (kmeans, higher better) or BIC (gmm, lower better)
    descriptions: dict[int, str]
    centroids: pd.DataFrame  # segment × feature, in the features' own units (medians)
    sizes: dict[int, int]


def describe_centroid(z: pd.Series, n_words: int = 3, min_z: float = 0.4) -> str:
    """Words for a standardised centroid: the strongest deviations first."""
    order = z.abs().sort_values(ascending=False)
    words: list[str] = []
    for col in order.index:
        if abs(z[col]) < min_z or len(words) >= n_words:
            break
        high, low = WORDS.get(col, (f"high {col}", f"low {col}"))
        word = high if z[col] > 0 else low
        if word not in words:
            words.append(word)
    return ", ".join(words) or "typical"


def segment_sites(
    sites: pd.DataFrame,
    features: Sequence[str] = DEFAULT_FEATURES,
    method: str = "kmeans",
    k_range: Sequence[int] = range(2, 8),
    seed: int = 0,
    sample: int = 20_000,
) -> Segmentation:
    """Cluster sites on standardised criteria; choose k by silhouette (KMeans) or BIC (GMM).

    Parameters
    ----------
    sites : site table with the ``features`` columns (units as in ``layers.SITE_COLUMNS``)
    features : criteria to cluster on; distances are log-transformed (log1p of metres)
    method : ``"kmeans"`` or ``"gmm"``
    k_range : candidate numbers of segments
    seed : random seed (same seed, same segments)
    sample : at most this many sites fit the models and score k; all are labelled

    Returns
    -------
    Segmentation
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.mixture import GaussianMixture
    from sklearn.preprocessing import StandardScaler

    if method not in ("kmeans", "gmm"):
        msg = f"segment method {method!r} not one of kmeans, gmm"
        raise ValueError(msg)
    missing = [f for f in features if f not in sites.columns]
    if missing:
        msg = f"segments: the site table has no column {', '.join(missing)}"
        raise ValueError(msg)
    raw = sites[list(features)].to_numpy(dtype=float)
    x = np.where([f.endswith("_m") for f in features], np.log1p(np.clip(raw, 0, None)), raw)
    ok = np.isfinite(x).all(axis=1)
    ks = [k for k in k_range if 2 <= k < ok.sum()]
    if not ks:
        msg = f"segments: {int(ok.sum())} sites with complete criteria are too few to cluster"
        raise ValueError(msg)
    scaler = StandardScaler().fit(x[ok])
    z = scaler.transform(x[ok])
    rng = np.random.default_rng(seed)
    fit_idx = rng.choice(len(z), min(sample, len(z)), replace=False)
    zf = z[fit_idx]
    scores: dict[int, float] = {}
    models = {}
    for k in ks:
        if method == "kmeans":
            model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(zf)
            lab = model.labels_
            scores[k] = (
                float(silhouette_score(zf, lab, sample_size=min(5000, len(zf)), random_state=seed))
                if len(set(lab)) > 1
                else -1.0
            )
        else:
            model = GaussianMixture(k, covariance_type="full", random_state=seed).fit(zf)
            scores[k] = float(model.bic(zf))
        models[k] = model
    best = (
        max(scores, key=scores.__getitem__)
        if method == "kmeans"
        else min(scores, key=scores.__getitem__)
    )
    labels = np.full(len(sites), -1, dtype=np.int64)
    labels[ok] = models[best].predict(z)
    zdf = pd.DataFrame(z, columns=list(features))
    zdf["_seg"] = labels[ok]
    zmean = zdf.groupby("_seg").mean()
    rdf = pd.DataFrame(raw[ok], columns=list(features))
    rdf["_seg"] = labels[ok]
    centroids = rdf.groupby("_seg").median()
    descriptions = {int(s): describe_centroid(zmean.loc[s]) for s in zmean.index}
    sizes = {
        int(s): int(c) for s, c in zip(*np.unique(labels[ok], return_counts=True), strict=True)
    }
    return Segmentation(labels, best, method, scores, descriptions, centroids, sizes)
