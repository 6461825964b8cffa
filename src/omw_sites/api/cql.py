"""OGC API Features Part 3 filters: CQL2 text or JSON parsed by ``cql2``, evaluated as masks."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import cql2
import numpy as np
import orjson
import pandas as pd
import shapely

from omw_sites.api.problems import ProblemError, bad_parameter

CQL2_TEXT = "cql2-text"
CQL2_JSON = "cql2-json"
CQL_TEXT = "cql-text"  # the draft's name, sent by GDAL's OAPIF driver: read as cql2-text
FILTER_LANGS = (CQL2_TEXT, CQL2_JSON, CQL_TEXT)
GEOMETRY_PROPERTY = "geometry"
Node = Any  # a CQL2-JSON node: dict, list or scalar

# STRtree predicate for ``S_xxx(geometry, literal)``: the tree tests predicate(literal, feature)
_TREE_PREDICATES: dict[str, str] = {
    "s_intersects": "intersects",
    "s_within": "contains",  # feature within literal <=> literal contains feature
    "s_contains": "within",  # feature contains literal <=> literal within feature
    "s_touches": "touches",
    "s_crosses": "crosses",
    "s_overlaps": "overlaps",
}
_MIRRORED = {"contains": "within", "within": "contains"}
_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_GEOJSON_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
    | {"GeometryCollection"}
)


def filter_problem(reason: str) -> ProblemError:
    return bad_parameter("filter", reason)


def parse_filter(text: str, lang: str) -> Node:
    """Parse ``text`` as CQL2 in ``lang`` into CQL2-JSON; a 400 problem when it is not CQL2."""
    try:
        if lang == CQL2_JSON:
            try:
                orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise filter_problem(f"not JSON: {exc}") from None
            expr = cql2.parse_json(text)
        else:
            expr = cql2.parse_text(text)
        return expr.to_json()
    except ProblemError:
        raise
    except Exception as exc:  # cql2.ParseError, ValidationError, ValueError
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        detail = " ".join(lines[:6]) if lines else type(exc).__name__
        raise filter_problem(f"not valid {lang}: {detail}") from None


def _like_regex(pattern: str) -> str:
    """A CQL2 LIKE pattern (``%`` any run, ``_`` one character, ``\\`` escapes) as a regex."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return "".join(out)


class FilterEvaluator:
    """Turn CQL2-JSON into a boolean row mask over a layer's property table.

    ``spatial(geom, predicate)`` returns the rows whose geometry satisfies the STRtree
    predicate against ``geom``; ``swap_axes`` turns literals given as (northing, easting)
    (EPSG:2180's own axis order) into the tree's (easting, northing).
    """

    def __init__(
        self,
        table: pd.DataFrame,
        spatial: Callable[[shapely.Geometry, str], np.ndarray],
        swap_axes: bool = False,
    ) -> None:
        self.table = table
        self.n = len(table)
        self.spatial = spatial
        self.swap = swap_axes

    def mask(self, node: Node) -> np.ndarray:
        out = self._eval(node)
        if not isinstance(out, np.ndarray) or out.dtype != bool:
            raise filter_problem("the filter must be a condition (true or false per feature)")
        return out

    # ------------------------------------------------------------------ values

    def _column(self, name: str) -> pd.Series:
        if name not in self.table.columns:
            valid = ", ".join(self.table.columns)
            raise filter_problem(f"unknown property {name!r}; queryables: geometry, {valid}")
        return self.table[name]

    def _value(self, node: Node) -> Any:
        if isinstance(node, dict):
            if "property" in node:
                name = node["property"]
                if name == GEOMETRY_PROPERTY:
                    raise filter_problem("the geometry can only be used in spatial functions")
                return self._column(str(name))
            if "date" in node or "timestamp" in node:
                return str(node.get("date") or node.get("timestamp"))
            if node.get("op") == "casei" and len(node.get("args", [])) == 1:
                value = self._value(node["args"][0])
                if isinstance(value, pd.Series):
                    return value.astype("string").str.lower()
                if isinstance(value, str):
                    return value.lower()
                raise filter_problem("CASEI takes a text property or literal")
            what = node.get("op") or next(iter(node), "object")
            raise filter_problem(f"{what!r} is not supported as a value")
        if isinstance(node, bool | int | float | str):
            return node
        if node is None:
            raise filter_problem("compare with NULL through IS NULL")
        raise filter_problem(f"unsupported value {node!r}")

    def _geometry(self, node: Node) -> shapely.Geometry:
        if isinstance(node, dict) and "bbox" in node:
            box = node["bbox"]
            if not isinstance(box, list) or len(box) not in (4, 6):
                raise filter_problem("a bbox literal takes 4 (or 6) numbers")
            minx, miny, maxx, maxy = box if len(box) == 4 else (box[0], box[1], box[3], box[4])
            geom = shapely.box(minx, miny, maxx, maxy)
        elif isinstance(node, dict) and node.get("type") in _GEOJSON_TYPES:
            try:
                geom = shapely.from_geojson(orjson.dumps(node))
            except Exception as exc:
                raise filter_problem(f"invalid geometry literal: {exc}") from None
        else:
            raise filter_problem(f"expected a geometry literal, got {node!r}")
        if geom is None or geom.is_empty:
            raise filter_problem("empty geometry literal")
        if self.swap:
            geom = shapely.transform(geom, lambda c: c[:, ::-1])
        return geom

    # ------------------------------------------------------------------ conditions

    def _eval(self, node: Node) -> Any:
        if isinstance(node, bool):
            return np.full(self.n, node)
        if not isinstance(node, dict) or "op" not in node:
            raise filter_problem(f"expected a condition, got {node!r}")
        op = str(node["op"]).lower()
        args = node.get("args", [])
        if not isinstance(args, list):
            args = [args]
        if op in ("and", "or") and args:
            masks = [self.mask(a) for a in args]
            out = masks[0]
            for m in masks[1:]:
                out = (out & m) if op == "and" else (out | m)
            return out
        if op == "not" and len(args) == 1:
            return ~self.mask(args[0])
        if op in _COMPARISONS and len(args) == 2:
            return self._compare(_COMPARISONS[op], args[0], args[1])
        if op == "between" and len(args) == 3:
            lhs, low, high = (self._value(a) for a in args)
            return self._present(lhs, self._as_mask(lambda: (lhs >= low) & (lhs <= high), args))
        if op == "in" and len(args) == 2 and isinstance(args[1], list):
            lhs = self._value(args[0])
            options = [self._value(v) for v in args[1]]
            if any(isinstance(o, pd.Series) for o in options) or not isinstance(lhs, pd.Series):
                raise filter_problem("IN compares a property with a list of literals")
            return self._present(lhs, self._as_mask(lambda: lhs.isin(options), args))
        if op == "like" and len(args) == 2:
            lhs, pattern = self._value(args[0]), self._value(args[1])
            if not isinstance(lhs, pd.Series) or not isinstance(pattern, str):
                raise filter_problem("LIKE compares a text property with a text pattern")
            hit = lhs.astype("string").str.fullmatch(_like_regex(pattern), flags=re.DOTALL)
            return np.array(hit.fillna(False), dtype=bool)
        if op == "isnull" and len(args) == 1:
            lhs = self._value(args[0])
            if not isinstance(lhs, pd.Series):
                raise filter_problem("IS NULL applies to a property")
            return np.array(lhs.isna(), dtype=bool)
        if op == "s_disjoint" and len(args) == 2:
            return ~self._spatial(args, "intersects")
        if op in _TREE_PREDICATES and len(args) == 2:
            return self._spatial(args, _TREE_PREDICATES[op])
        raise filter_problem(f"unsupported operator {node['op']!r} with {len(args)} argument(s)")

    def _spatial(self, args: list[Node], predicate: str) -> np.ndarray:
        lhs, rhs = args
        if isinstance(rhs, dict) and "property" in rhs:
            lhs, rhs = rhs, lhs
            predicate = _MIRRORED.get(predicate, predicate)
        name = lhs.get("property") if isinstance(lhs, dict) else None
        if name != GEOMETRY_PROPERTY:
            if isinstance(name, str):
                self._column(name)  # an unknown property is named as such
            msg = f"spatial functions compare {GEOMETRY_PROPERTY!r} with a literal, not {lhs!r}"
            raise filter_problem(msg)
        geom = self._geometry(rhs)
        if not geom.is_valid:  # e.g. a self-intersecting ring: repair instead of failing
            geom = shapely.make_valid(geom)
        try:
            rows = self.spatial(geom, predicate)
        except shapely.errors.GEOSException as exc:
            raise filter_problem(f"cannot evaluate the geometry literal: {exc}") from None
        mask = np.zeros(self.n, dtype=bool)
        mask[rows] = True
        return mask

    def _compare(self, op: Callable[[Any, Any], Any], lhs_node: Node, rhs_node: Node) -> np.ndarray:
        lhs, rhs = self._value(lhs_node), self._value(rhs_node)
        if not isinstance(lhs, pd.Series) and not isinstance(rhs, pd.Series):
            return np.full(self.n, bool(op(lhs, rhs)))
        got = self._as_mask(lambda: op(lhs, rhs), [lhs_node, rhs_node])
        for side in (lhs, rhs):  # CQL2: a comparison with a null value is not true (also <>)
            got = self._present(side, got)
        return got

    def _as_mask(self, compute: Callable[[], Any], args: list[Node]) -> np.ndarray:
        try:
            out = compute()
        except (TypeError, ValueError) as exc:
            names = [a["property"] for a in args if isinstance(a, dict) and "property" in a]
            msg = f"type mismatch comparing {', '.join(map(repr, names)) or 'values'}: {exc}"
            raise filter_problem(msg) from None
        if isinstance(out, pd.Series):
            return np.array(out.fillna(False), dtype=bool)
        return np.full(self.n, bool(out))

    @staticmethod
    def _present(side: Any, got: np.ndarray) -> np.ndarray:
        if isinstance(side, pd.Series):
            return got & np.array(side.notna(), dtype=bool)
        return got
