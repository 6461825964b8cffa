"""Investor profiles in TOML: criteria, value functions, weights and hard constraints."""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from omw_sites.layers import SITE_COLUMNS, TEXT_COLUMNS
from omw_sites.scoring.expr import ExpressionError, names_in
from omw_sites.scoring.weights import ahp

FUNCTIONS = ("linear", "piecewise", "threshold", "gaussian", "boolean")
DIRECTIONS = ("benefit", "cost")
METHODS = ("wlc", "topsis", "vikor", "promethee2")
WEIGHTING = ("direct", "ahp", "entropy")
# what each value function needs besides the raw value ("boolean": nothing)
FUNCTION_PARAMETERS = {
    "linear": ("bounds",),
    "piecewise": ("points",),
    "threshold": ("threshold",),
    "gaussian": ("ideal", "spread"),
}
# columns a profile may use besides the site table's numeric criteria
DERIVED = {
    "zoning_compatible": "site's designation is compatible with the profile",
    "owner_public": "municipal or State Treasury land",
    "owner_municipal": "municipal land",
}
_TEXT = set(TEXT_COLUMNS)
NUMERIC_CRITERIA = tuple(c for c in SITE_COLUMNS if c not in _TEXT)
KNOWN_NAMES = set(NUMERIC_CRITERIA) | set(DERIVED) | _TEXT


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Criterion:
    name: str
    weight: float  # normalised, sums to 1 over the profile
    function: str
    direction: str = "benefit"
    bounds: tuple[float, float] | None = None
    points: tuple[tuple[float, float], ...] | None = None
    label: str = ""
    threshold: float | None = None
    ideal: float | None = None
    spread: float | None = None

    def __post_init__(self) -> None:
        missing = [
            p for p in FUNCTION_PARAMETERS.get(self.function, ()) if getattr(self, p) is None
        ]
        if missing:
            msg = f"criterion {self.name!r}: {self.function} needs {' and '.join(missing)}"
            raise ValueError(msg)

    @property
    def unit(self) -> str:
        """Unit of the raw criterion (m, ha, MW, share, %, or "" for flags)."""
        return SITE_COLUMNS.get(self.name, ("", ""))[0] or (
            "%" if self.name.endswith("_pct") else ""
        )

    @property
    def types(self) -> int:
        """+1 for benefit, −1 for cost (of the raw value)."""
        return -1 if self.direction == "cost" else 1


@dataclass(frozen=True)
class ReadinessCheck:
    """One condition of readiness tiers; a site failing it has the ``gap``."""

    expr: str
    gap: str


@dataclass(frozen=True)
class Constraint:
    expr: str
    reason: str


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    version: int
    rationale: str
    method: str
    min_area_ha: float
    compatible_classes: tuple[str, ...]
    compatible_plan_zones: tuple[str, ...]
    criteria: tuple[Criterion, ...]
    constraints: tuple[Constraint, ...]
    source: str
    hash: str
    raw_weights: dict[str, float] = field(default_factory=dict)
    weighting: str = "direct"
    ahp_cr: float | None = None
    shortlist: int = 200
    vikor_v: float = 0.5
    preference: str = "usual"
    readiness: tuple[ReadinessCheck, ...] = ()
    segment_features: tuple[str, ...] = ()

    @property
    def weights(self) -> dict[str, float]:
        return {c.name: c.weight for c in self.criteria}

    def record(self) -> dict[str, object]:
        """What the store keeps of this profile with every result (``run_info``)."""
        return {
            "name": self.name,
            "title": self.title,
            "version": self.version,
            "hash": self.hash,
            "method": self.method,
            "weighting": self.weighting,
            "ahp_cr": self.ahp_cr,
            "weights": {c.name: round(c.weight, 6) for c in self.criteria},
            "labels": {c.name: c.label for c in self.criteria},
            "constraints": [c.reason for c in self.constraints],
            "rationale": self.rationale,
        }

    def with_method(self, method: str) -> Profile:
        """The same profile scored with another method (its hash changes with it)."""
        if method not in METHODS:
            msg = f"method {method!r} not one of {', '.join(METHODS)}"
            raise ProfileError(msg)
        if method == self.method:
            return self
        return replace(self, method=method, hash=_rehash(self.hash, {"method": method}))

    def with_weights(self, weights: dict[str, float], origin: str = "override") -> Profile:
        """The same profile with direct weights for (some of) its criteria.

        Criteria not in ``weights`` keep their current weight; all are renormalised to 1.
        """
        unknown = set(weights) - set(self.weights)
        if unknown:
            msg = (
                f"{origin}: weights for criteria not in profile {self.name!r}: "
                f"{', '.join(sorted(unknown))} (it has {', '.join(self.weights)})"
            )
            raise ProfileError(msg)
        new = {c.name: float(weights.get(c.name, c.weight)) for c in self.criteria}
        if any(not np.isfinite(w) or w < 0 for w in new.values()) or not sum(new.values()) > 0:
            msg = f"{origin}: weights must be numbers ≥ 0 with a positive sum"
            raise ProfileError(msg)
        total = sum(new.values())
        crit = tuple(replace(c, weight=new[c.name] / total) for c in self.criteria)
        return replace(
            self,
            criteria=crit,
            weighting="direct",
            raw_weights=new,
            hash=_rehash(self.hash, {"weights": new}),
        )


def _rehash(base: str, change: dict) -> str:
    blob = base + json.dumps(change, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def builtin_dir() -> Path:
    return Path(str(resources.files("omw_sites.scoring") / "profiles"))


def load_profiles(names: list[str] | None = None, directory: Path | None = None) -> list[Profile]:
    """Load profiles by name (all ``*.toml`` of the directory when ``names`` is None)."""
    directory = directory or builtin_dir()
    if names is None:
        paths = sorted(directory.glob("*.toml"))
    else:
        paths = [p if (p := Path(n)).suffix == ".toml" else directory / f"{n}.toml" for n in names]
    if not paths:
        msg = f"no profiles found in {directory}"
        raise ProfileError(msg)
    return [load_profile(p) for p in paths]


def load_profile(path: str | Path) -> Profile:
    """Read and validate one profile file.

    Weights are given per criterion (``weight = 35``), as an AHP pairwise matrix
    (``[weights] method = "ahp"``, ``order = [...]``, ``matrix = [[1, "3", …], …]``; refused
    when its consistency ratio is above 0.1) or from entropy (``[weights] method =
    "entropy"``: computed from the eligible sites' values at scoring time).
    """
    path = Path(path)
    data, doc = _read_profile_toml(path)

    def fail(problem: str) -> ProfileError:
        return ProfileError(f"{path}: {problem}")

    name = doc.get("name") or path.stem
    crit_doc = doc.get("criteria")
    if not isinstance(crit_doc, dict) or not crit_doc:
        raise fail("no [criteria.<name>] tables")
    wdoc = doc.get("weights", {})
    if not isinstance(wdoc, dict):
        raise fail("[weights] must be a table")
    weighting = wdoc.get("method", "direct")
    if weighting not in WEIGHTING:
        raise fail(f"[weights] method {weighting!r} not one of {', '.join(WEIGHTING)}")
    raw_weights: dict[str, float] = {}
    parsed = []
    for cname, spec in crit_doc.items():
        raw_weights[cname], item = _parse_criterion(cname, spec, weighting, fail)
        parsed.append(item)
    ahp_cr = None
    if weighting == "ahp":
        raw_weights, ahp_cr = _ahp_weights(wdoc, raw_weights, fail)
    total = sum(raw_weights.values())
    if not total > 0:
        raise fail("weights must sum to a positive number")
    criteria = tuple(
        Criterion(c, raw_weights[c] / total, f, d, label=lab, **ex) for c, f, d, lab, ex in parsed
    )
    constraints, readiness = _parse_checks(doc, fail)
    method, preference, shortlist, vikor_v, features = _scoring_options(doc, fail)
    return Profile(
        name=str(name),
        title=str(doc.get("title", name)),
        version=int(doc.get("version", 1)),
        rationale=str(doc.get("rationale", "")).strip(),
        method=method,
        min_area_ha=float(doc.get("min_area_ha", 0.0)),
        compatible_classes=tuple(doc.get("compatible_classes", [])),
        compatible_plan_zones=tuple(doc.get("compatible_plan_zones", [])),
        criteria=criteria,
        constraints=tuple(constraints),
        source=str(path),
        hash=hashlib.sha256(data).hexdigest()[:12],
        raw_weights=raw_weights,
        weighting=weighting,
        ahp_cr=ahp_cr,
        shortlist=shortlist,
        vikor_v=float(vikor_v),
        preference=preference,
        readiness=tuple(readiness),
        segment_features=features,
    )


Fail = Callable[[str], ProfileError]  # a problem -> the error naming the profile file


def _read_profile_toml(path: Path) -> tuple[bytes, dict[str, Any]]:
    """The file's bytes (hashed into the profile's version) and its TOML document."""
    if not path.exists():
        available = ", ".join(p.stem for p in builtin_dir().glob("*.toml"))
        msg = f"{path}: profile file not found (built-in profiles: {available})"
        raise ProfileError(msg)
    data = path.read_bytes()
    try:
        return data, tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path}: not valid TOML: {exc}"
        raise ProfileError(msg) from exc


def _parse_criterion(
    cname: str, spec: Any, weighting: str, fail: Fail
) -> tuple[float, tuple[str, str, str, str, dict[str, Any]]]:
    """A ``[criteria.<name>]`` table: its raw weight and (name, function, direction,
    label, value-function parameters)."""
    if cname not in NUMERIC_CRITERIA and cname not in DERIVED:
        raise fail(
            f"unknown criterion {cname!r}; known criteria: " + ", ".join(sorted(NUMERIC_CRITERIA))
        )
    if not isinstance(spec, dict):
        raise fail(f"criterion {cname!r} must be a table")
    weight = spec.get("weight", 1.0 if weighting != "direct" else None)
    if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0:
        raise fail(f"criterion {cname!r}: weight must be a number ≥ 0 (got {weight!r})")
    func = spec.get("function", "linear")
    if func not in FUNCTIONS:
        raise fail(f"criterion {cname!r}: function {func!r} not one of {', '.join(FUNCTIONS)}")
    direction = spec.get("direction", "benefit")
    if direction not in DIRECTIONS:
        raise fail(f"criterion {cname!r}: direction must be benefit or cost")
    params = _FUNCTION_PARAMS.get(func)
    extra = params(spec, lambda problem: fail(f"criterion {cname!r}: {problem}")) if params else {}
    return float(weight), (cname, func, direction, str(spec.get("label", cname)), extra)


def _linear_params(spec: dict[str, Any], fail: Fail) -> dict[str, Any]:
    b = spec.get("bounds")
    if not (isinstance(b, list) and len(b) == 2 and b[0] < b[1]):
        raise fail("linear needs bounds = [low, high] with low < high")
    return {"bounds": (float(b[0]), float(b[1]))}


def _piecewise_params(spec: dict[str, Any], fail: Fail) -> dict[str, Any]:
    pts = spec.get("points")
    if not (isinstance(pts, list) and len(pts) >= 2 and all(len(p) == 2 for p in pts)):
        raise fail("piecewise needs points = [[x, value], …] (≥ 2)")
    xs = [p[0] for p in pts]
    if xs != sorted(xs) or any(not 0 <= p[1] <= 1 for p in pts):
        raise fail("points need increasing x and values in 0..1")
    return {"points": tuple((float(x), float(v)) for x, v in pts)}


def _threshold_params(spec: dict[str, Any], fail: Fail) -> dict[str, Any]:
    t = spec.get("threshold")
    if not isinstance(t, int | float) or isinstance(t, bool):
        raise fail("threshold needs threshold = <number>")
    return {"threshold": float(t)}


def _gaussian_params(spec: dict[str, Any], fail: Fail) -> dict[str, Any]:
    ideal, spread = spec.get("ideal"), spec.get("spread")
    if not isinstance(ideal, int | float) or not (isinstance(spread, int | float) and spread > 0):
        raise fail("gaussian needs ideal = <number> and spread > 0")
    return {"ideal": float(ideal), "spread": float(spread)}


# parameters each value function reads from its criterion's table ("boolean" has none)
_FUNCTION_PARAMS: dict[str, Callable[[dict[str, Any], Fail], dict[str, Any]]] = {
    "linear": _linear_params,
    "piecewise": _piecewise_params,
    "threshold": _threshold_params,
    "gaussian": _gaussian_params,
}


def _ahp_weights(
    wdoc: dict[str, Any], raw_weights: dict[str, float], fail: Fail
) -> tuple[dict[str, float], float]:
    """Weights from the ``[weights]`` AHP matrix, and its consistency ratio."""
    order, matrix = wdoc.get("order"), wdoc.get("matrix")
    if not isinstance(order, list) or sorted(order) != sorted(raw_weights):
        raise fail(
            "[weights] ahp needs order = [every criterion once], in the matrix's order; "
            f"criteria: {', '.join(raw_weights)}"
        )
    try:
        res = ahp(matrix, order)
    except (ValueError, TypeError) as exc:
        raise fail(f"[weights] ahp matrix: {exc}") from exc
    if not res.consistent:
        raise fail(f"[weights] ahp matrix: {res.advice()}")
    return {c: float(w) for c, w in zip(order, res.weights, strict=True)}, res.cr


def _parse_checks(doc: dict[str, Any], fail: Fail) -> tuple[list[Constraint], list[ReadinessCheck]]:
    """The ``[[constraints]]`` and ``[[readiness]]`` expressions, checked for known names."""
    constraints = []
    for i, con in enumerate(doc.get("constraints", [])):
        expr = con.get("expr") if isinstance(con, dict) else None
        if not isinstance(expr, str):
            raise fail(f'constraint #{i + 1} needs expr = "…"')
        _check_expr(expr, f"constraint #{i + 1}", fail)
        constraints.append(Constraint(expr, str(con.get("reason", expr))))
    readiness = []
    for i, chk in enumerate(doc.get("readiness", [])):
        expr = chk.get("expr") if isinstance(chk, dict) else None
        if not isinstance(expr, str):
            raise fail(f'readiness check #{i + 1} needs expr = "…" and gap = "…"')
        _check_expr(expr, f"readiness check #{i + 1}", fail)
        readiness.append(ReadinessCheck(expr, str(chk.get("gap", f"not {expr}"))))
    return constraints, readiness


def _scoring_options(
    doc: dict[str, Any], fail: Fail
) -> tuple[str, str, int, float | int, tuple[str, ...]]:
    """method, preference, shortlist, vikor_v and the segmentation features."""
    method = doc.get("method", "wlc")
    if method not in METHODS:
        raise fail(f"method {method!r} not one of {', '.join(METHODS)}")
    preference = doc.get("preference", "usual")
    if preference != "usual":
        raise fail("profiles score PROMETHEE II with the 'usual' preference on values")
    shortlist = doc.get("shortlist", 200)
    if not isinstance(shortlist, int) or not 2 <= shortlist <= 2000:
        raise fail(f"shortlist must be an integer 2..2000 (got {shortlist!r})")
    vikor_v = doc.get("vikor_v", 0.5)
    if not isinstance(vikor_v, int | float) or not 0 <= vikor_v <= 1:
        raise fail(f"vikor_v must be 0..1 (got {vikor_v!r})")
    seg = doc.get("segments", {})
    features = tuple(seg.get("features", ())) if isinstance(seg, dict) else ()
    unknown = set(features) - set(NUMERIC_CRITERIA)
    if unknown:
        raise fail(f"[segments] features: unknown criteria {', '.join(sorted(unknown))}")
    return method, preference, shortlist, vikor_v, features


def _check_expr(expr: str, what: str, fail: Fail) -> None:
    try:
        unknown = names_in(expr) - KNOWN_NAMES
    except ExpressionError as exc:
        raise fail(f"{what}: {exc}") from exc
    if unknown:
        raise fail(f"{what} {expr!r} uses unknown criterion {', '.join(sorted(unknown))}")


def load_weights_file(path: str | Path) -> dict[str, float]:
    """Direct weights from a TOML or JSON file ``{criterion = weight, …}``.

    A TOML file may instead hold an AHP matrix: ``method = "ahp"``, ``order``, ``matrix``.
    """
    path = Path(path)
    if not path.exists():
        msg = f"{path}: weights file not found"
        raise ProfileError(msg)
    text = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        msg = f"{path}: cannot parse weights: {exc}"
        raise ProfileError(msg) from exc
    doc = doc.get("weights", doc) if isinstance(doc, dict) else doc
    if isinstance(doc, dict) and doc.get("method") == "ahp":
        try:
            res = ahp(doc.get("matrix"), doc.get("order"))
        except (ValueError, TypeError) as exc:
            msg = f"{path}: ahp matrix: {exc}"
            raise ProfileError(msg) from exc
        if not res.consistent:
            msg = f"{path}: {res.advice()}"
            raise ProfileError(msg)
        return {c: float(w) for c, w in zip(doc["order"], res.weights, strict=True)}
    if not isinstance(doc, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in doc.values()
    ):
        msg = f"{path}: weights must be a table of criterion = number"
        raise ProfileError(msg)
    return {str(k): float(v) for k, v in doc.items()}
