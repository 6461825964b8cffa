"""Investor profiles in TOML: criteria, value functions, weights and hard constraints."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from omw_sites.layers import SITE_COLUMNS
from omw_sites.scoring.expr import ExpressionError, names_in

FUNCTIONS = ("linear", "piecewise", "boolean")
DIRECTIONS = ("benefit", "cost")
# columns a profile may use besides the site table's numeric criteria
DERIVED = {
    "zoning_compatible": "site's designation is compatible with the profile",
    "owner_public": "municipal or State Treasury land",
    "owner_municipal": "municipal land",
}
_TEXT = {
    "site_id",
    "parcel_ids",
    "teryt",
    "gmina",
    "ownership",
    "zoning_symbol",
    "zoning_class",
    "plan_zone",
    "planning_instrument",
    "junction_name",
}
NUMERIC_CRITERIA = tuple(c for c in SITE_COLUMNS if c not in _TEXT) + ("slope_max_pct",)
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

    @property
    def weights(self) -> dict[str, float]:
        return {c.name: c.weight for c in self.criteria}


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
    """Read and validate one profile file."""
    path = Path(path)
    if not path.exists():
        available = ", ".join(p.stem for p in builtin_dir().glob("*.toml"))
        msg = f"{path}: profile file not found (built-in profiles: {available})"
        raise ProfileError(msg)
    data = path.read_bytes()
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path}: not valid TOML: {exc}"
        raise ProfileError(msg) from exc

    def fail(problem: str) -> ProfileError:
        return ProfileError(f"{path}: {problem}")

    name = doc.get("name") or path.stem
    crit_doc = doc.get("criteria")
    if not isinstance(crit_doc, dict) or not crit_doc:
        raise fail("no [criteria.<name>] tables")
    raw_weights: dict[str, float] = {}
    parsed = []
    for cname, spec in crit_doc.items():
        if cname not in NUMERIC_CRITERIA and cname not in DERIVED:
            raise fail(
                f"unknown criterion {cname!r}; known criteria: "
                + ", ".join(sorted(NUMERIC_CRITERIA))
            )
        if not isinstance(spec, dict):
            raise fail(f"criterion {cname!r} must be a table")
        weight = spec.get("weight")
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0:
            raise fail(f"criterion {cname!r}: weight must be a number ≥ 0 (got {weight!r})")
        func = spec.get("function", "linear")
        if func not in FUNCTIONS:
            raise fail(f"criterion {cname!r}: function {func!r} not one of {', '.join(FUNCTIONS)}")
        direction = spec.get("direction", "benefit")
        if direction not in DIRECTIONS:
            raise fail(f"criterion {cname!r}: direction must be benefit or cost")
        bounds = points = None
        if func == "linear":
            b = spec.get("bounds")
            if not (isinstance(b, list) and len(b) == 2 and b[0] < b[1]):
                raise fail(
                    f"criterion {cname!r}: linear needs bounds = [low, high] with low < high"
                )
            bounds = (float(b[0]), float(b[1]))
        elif func == "piecewise":
            pts = spec.get("points")
            if not (isinstance(pts, list) and len(pts) >= 2 and all(len(p) == 2 for p in pts)):
                raise fail(f"criterion {cname!r}: piecewise needs points = [[x, value], …] (≥ 2)")
            xs = [p[0] for p in pts]
            if xs != sorted(xs) or any(not 0 <= p[1] <= 1 for p in pts):
                raise fail(f"criterion {cname!r}: points need increasing x and values in 0..1")
            points = tuple((float(x), float(v)) for x, v in pts)
        raw_weights[cname] = float(weight)
        parsed.append((cname, func, direction, bounds, points, str(spec.get("label", cname))))
    total = sum(raw_weights.values())
    if not total > 0:
        raise fail("weights must sum to a positive number")
    criteria = tuple(
        Criterion(c, raw_weights[c] / total, f, d, b, p, lab) for c, f, d, b, p, lab in parsed
    )
    constraints = []
    for i, con in enumerate(doc.get("constraints", [])):
        expr = con.get("expr") if isinstance(con, dict) else None
        if not isinstance(expr, str):
            raise fail(f'constraint #{i + 1} needs expr = "…"')
        try:
            unknown = names_in(expr) - KNOWN_NAMES
        except ExpressionError as exc:
            raise fail(f"constraint #{i + 1}: {exc}") from exc
        if unknown:
            raise fail(f"constraint {expr!r} uses unknown criterion {', '.join(sorted(unknown))}")
        constraints.append(Constraint(expr, str(con.get("reason", expr))))
    method = doc.get("method", "wlc")
    if method != "wlc":
        raise fail(f"method {method!r} is not available yet (wlc)")
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
    )
