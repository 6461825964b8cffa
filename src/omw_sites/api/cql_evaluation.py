"""CQL2 filters (parsed by :mod:`omw_sites.api.cql`) evaluated as boolean row masks over a
layer's property table, spatial functions through the layer's STRtree.

The evaluator recurses no deeper than the depth limit and stops at a deadline. LIKE runs
without backtracking regular expressions: Arrow's LIKE kernel (RE2, linear time) for a
literal pattern, a segment matcher (``LikePattern``) for patterns taken from a property.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from omw_sites.api.cql import Node, filter_problem
from omw_sites.api.limits import MAX_FILTER_DEPTH, MAX_FILTER_SECONDS, MAX_LIKE_PATTERN

GEOMETRY_PROPERTY = "geometry"

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
# ``S_xxx(geometry, geometry)``: a non-empty geometry intersects, contains and is within
# itself; it never touches, crosses or overlaps itself and is not disjoint from itself.
_SELF_TRUE = frozenset({"s_intersects", "s_within", "s_contains"})
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
_ROW_CHUNK = 4096  # rows between deadline checks in a row-wise LIKE


# ---------------------------------------------------------------- LIKE without backtracking


@dataclass(frozen=True)
class _Segment:
    """A run of a LIKE pattern between two ``%``: fixed length, ``_`` at ``wild``."""

    text: str  # the literal characters; any character stands at a wildcard position
    wild: tuple[int, ...]
    fixed: tuple[tuple[int, str], ...]  # (offset, character) of the literal characters
    anchor: str  # the longest literal run, to find candidates with str.find
    anchor_at: int  # its offset in the segment

    def at(self, s: str, pos: int) -> bool:
        """Does the segment match ``s`` at ``pos`` (which leaves room for it)?"""
        if not self.wild:
            return s.startswith(self.text, pos)
        return all(s[pos + k] == c for k, c in self.fixed)

    def find(self, s: str, start: int, end: int) -> int:
        """The leftmost position ``p >= start`` where the segment matches within
        ``s[:end]``, or -1."""
        size = len(self.text)
        if not self.wild:
            return s.find(self.text, start, end)
        last = end - size
        if not self.anchor:  # only "_": any position with room
            return start if start <= last else -1
        k = self.anchor_at
        q = s.find(self.anchor, start + k, last + k + len(self.anchor))
        while q >= 0:
            if self.at(s, q - k):
                return q - k
            q = s.find(self.anchor, q + 1, last + k + len(self.anchor))
        return -1


class LikePattern:
    """A CQL2 LIKE pattern (``%`` any run, ``_`` one character, ``\\`` escapes the next
    character; a trailing ``\\`` is itself) matched in O(len(text) * len(pattern)).

    The pattern splits at its ``%`` into fixed-length segments: the first must match at
    the start, the last at the end, and the ones between greedily at their leftmost
    position, which is exact when ``%`` is the only variable-length wildcard.
    """

    __slots__ = ("segments", "source")

    def __init__(self, pattern: str) -> None:
        self.source = pattern
        segments: list[list[tuple[str, bool]]] = [[]]  # (character, is "_")
        i, n = 0, len(pattern)
        while i < n:
            ch = pattern[i]
            if ch == "\\" and i + 1 < n:
                segments[-1].append((pattern[i + 1], False))
                i += 2
                continue
            if ch == "%":
                # "%%" is one run; an empty first (or last) segment anchors nothing
                if segments[-1] or len(segments) == 1:
                    segments.append([])
            else:
                segments[-1].append((ch, ch == "_"))
            i += 1
        self.segments = tuple(_segment(seg) for seg in segments)

    def match(self, s: str) -> bool:
        segs = self.segments
        first = segs[0]
        if len(segs) == 1:
            return len(s) == len(first.text) and first.at(s, 0)
        last = segs[-1]
        end = len(s) - len(last.text)
        if end < len(first.text) or not (first.at(s, 0) and last.at(s, end)):
            return False
        pos = len(first.text)
        for seg in segs[1:-1]:
            p = seg.find(s, pos, end)
            if p < 0:
                return False
            pos = p + len(seg.text)
        return True

    def as_sql(self) -> str:
        """The same pattern in SQL LIKE syntax with ``\\`` escapes (Arrow's ``match_like``)."""
        out = []
        for seg in self.segments:
            out.append(
                "".join(
                    "_" if k in seg.wild else ("\\" + c if c in "%_\\" else c)
                    for k, c in enumerate(seg.text)
                )
            )
        return "%".join(out)


def _segment(chars: list[tuple[str, bool]]) -> _Segment:
    text = "".join("?" if wild else c for c, wild in chars)
    wild = tuple(k for k, (_, w) in enumerate(chars) if w)
    fixed = tuple((k, c) for k, (c, w) in enumerate(chars) if not w)
    best, best_at, run_at = "", 0, 0
    for k in range(len(chars) + 1):
        if k == len(chars) or chars[k][1]:
            if k - run_at > len(best):
                best, best_at = text[run_at:k], run_at
            run_at = k + 1
    return _Segment(text, wild, fixed, best, best_at)


def like_column(values: pd.Series, pattern: LikePattern) -> np.ndarray:
    """Rows of a text column matching one pattern: Arrow's LIKE kernel (RE2, linear
    time); missing values do not match."""
    if any("\\" in seg.text for seg in pattern.segments):
        # Arrow mishandles an escaped backslash after % ("%\\\\" misses "\\"): match those
        # (rare) patterns row by row, still in linear time
        return np.array(
            [isinstance(v, str) and pattern.match(v) for v in values.tolist()], dtype=bool
        )
    arr = pa.array(values.astype("string"), type=pa.large_string(), from_pandas=True)
    hit = pc.fill_null(pc.match_like(arr, pattern.as_sql()), False)
    return hit.to_numpy(zero_copy_only=False).astype(bool, copy=False)


# ---------------------------------------------------------------- evaluation


class FilterEvaluator:
    """Turn CQL2-JSON into a boolean row mask over a layer's property table.

    ``spatial(geom, predicate)`` returns the rows whose geometry satisfies the STRtree
    predicate against ``geom``; ``swap_axes`` turns literals given as (northing, easting)
    (EPSG:2180's own axis order) into the tree's (easting, northing). ``geometries`` (one
    per row, None for none) answers spatial functions between the geometry and itself.
    Evaluation stops with a 400 after ``max_seconds``.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        spatial: Callable[[shapely.Geometry, str], np.ndarray],
        swap_axes: bool = False,
        geometries: np.ndarray | None = None,
        max_seconds: float = MAX_FILTER_SECONDS,
    ) -> None:
        self.table = table
        self.n = len(table)
        self.spatial = spatial
        self.swap = swap_axes
        self.geometries = geometries
        self.max_seconds = max_seconds
        self.deadline = time.monotonic() + max_seconds

    def mask(self, node: Node, depth: int = 0) -> np.ndarray:
        if depth > MAX_FILTER_DEPTH:
            raise filter_problem(f"operators nest deeper than the limit of {MAX_FILTER_DEPTH}")
        out = self._eval(node, depth)
        if not isinstance(out, np.ndarray) or out.dtype != bool:
            raise filter_problem("the filter must be a condition (true or false per feature)")
        self._check_time()
        return out

    def _check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise filter_problem(
                f"evaluating the filter over {self.n:,} features took longer than "
                f"{self.max_seconds:g} s, the limit; use fewer or simpler conditions"
            )

    # ------------------------------------------------------------------ values

    def _column(self, name: str) -> pd.Series:
        if name not in self.table.columns:
            valid = ", ".join(self.table.columns)
            raise filter_problem(f"unknown property {name!r}; queryables: geometry, {valid}")
        return self.table[name]

    def _value(self, node: Node, depth: int) -> Any:
        if depth > MAX_FILTER_DEPTH:
            raise filter_problem(f"operators nest deeper than the limit of {MAX_FILTER_DEPTH}")
        if isinstance(node, dict):
            if "property" in node:
                name = node["property"]
                if name == GEOMETRY_PROPERTY:
                    raise filter_problem("the geometry can only be used in spatial functions")
                return self._column(str(name))
            if "date" in node or "timestamp" in node:
                return str(node.get("date") or node.get("timestamp"))
            if str(node.get("op", "")).lower() == "casei" and len(node.get("args", [])) == 1:
                value = self._value(node["args"][0], depth + 1)
                # full case folding: CASEI('STRASSE') = CASEI('Straße')
                if isinstance(value, pd.Series):
                    return value.astype("string").str.casefold()
                if isinstance(value, str):
                    return value.casefold()
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

    def _eval(self, node: Node, depth: int) -> Any:
        if isinstance(node, bool):
            return np.full(self.n, node)
        if not isinstance(node, dict) or "op" not in node:
            raise filter_problem(f"expected a condition, got {node!r}")
        op = str(node["op"]).lower()
        args = node.get("args", [])
        if not isinstance(args, list):
            args = [args]
        if op in ("and", "or") and args:
            out = self.mask(args[0], depth + 1)
            for arg in args[1:]:
                m = self.mask(arg, depth + 1)
                out = (out & m) if op == "and" else (out | m)
            return out
        if op == "not" and len(args) == 1:
            return ~self.mask(args[0], depth + 1)
        return self._predicate(node, op, args, depth)

    def _predicate(self, node: dict, op: str, args: list[Node], depth: int) -> Any:
        """A comparison, BETWEEN, IN, LIKE, IS NULL or spatial predicate."""

        def values() -> list[Any]:
            return [self._value(a, depth + 1) for a in args]

        if op in _COMPARISONS and len(args) == 2:
            lhs, rhs = values()
            return self._compare(_COMPARISONS[op], lhs, rhs, args)
        if op == "between" and len(args) == 3:
            lhs, low, high = values()
            got = self._as_mask(lambda: (lhs >= low) & (lhs <= high), args)
            return self._present(got, lhs, low, high)
        if op == "in" and len(args) == 2 and isinstance(args[1], list):
            return self._in(self._value(args[0], depth + 1), args, depth)
        if op == "like" and len(args) == 2:
            return self._like(*values())
        if op == "isnull" and len(args) == 1:
            return self._isnull(*values())
        if (op == "s_disjoint" or op in _TREE_PREDICATES) and len(args) == 2:
            return self._spatial_predicate(op, args)
        raise filter_problem(f"unsupported operator {node['op']!r} with {len(args)} argument(s)")

    def _isnull(self, lhs: Any) -> np.ndarray:
        if isinstance(lhs, pd.Series):
            return np.array(lhs.isna(), dtype=bool)
        return np.full(self.n, lhs is None)

    def _spatial_predicate(self, op: str, args: list[Node]) -> np.ndarray:
        if op == "s_disjoint":
            if self._self_spatial(args):
                return np.zeros(self.n, dtype=bool)
            return ~self._spatial(args, "intersects")
        if self._self_spatial(args):
            return self._has_geometry() if op in _SELF_TRUE else np.zeros(self.n, bool)
        return self._spatial(args, _TREE_PREDICATES[op])

    def _in(self, lhs: Any, args: list[Node], depth: int) -> np.ndarray:
        options = [self._value(v, depth + 1) for v in args[1]]
        literals = [o for o in options if not isinstance(o, pd.Series)]
        columns = [o for o in options if isinstance(o, pd.Series)]
        if isinstance(lhs, pd.Series):
            got = self._as_mask(lambda: lhs.isin(literals), args)
        else:
            got = np.full(self.n, lhs in literals)
        eq = _COMPARISONS["="]
        for column in columns:  # property-property: lhs equals that row's value
            got |= self._compare(eq, lhs, column, args)
        return self._present(got, lhs)

    def _like(self, lhs: Any, pattern: Any) -> np.ndarray:
        if not isinstance(lhs, pd.Series | str) or not isinstance(pattern, pd.Series | str):
            raise filter_problem("LIKE compares text (a property or a literal) with a pattern")
        if isinstance(pattern, str):
            if len(pattern) > MAX_LIKE_PATTERN:
                raise filter_problem(
                    f"the LIKE pattern is {len(pattern):,} characters long; "
                    f"the limit is {MAX_LIKE_PATTERN}"
                )
            compiled = LikePattern(pattern)
            if isinstance(lhs, str):
                return np.full(self.n, compiled.match(lhs))
            return like_column(lhs, compiled)
        # property-property: each row's own pattern; one without wildcards is an equality
        patterns = pattern.astype("string")
        texts = lhs.astype("string") if isinstance(lhs, pd.Series) else lhs
        wild = np.zeros(self.n, dtype=bool)
        for special in "%_\\":
            wild |= np.array(patterns.str.contains(special, regex=False).fillna(False), bool)
        out = np.array((texts == patterns).fillna(False), dtype=bool) & ~wild
        rows = np.flatnonzero(wild)
        if isinstance(texts, pd.Series):
            row_texts = texts.take(rows).tolist()
        else:
            row_texts = [texts] * len(rows)
        cache: dict[str, LikePattern] = {}
        for k, (row, text, pat) in enumerate(
            zip(rows.tolist(), row_texts, patterns.take(rows).tolist(), strict=True)
        ):
            if k % _ROW_CHUNK == 0:
                self._check_time()
            if text is pd.NA:
                continue
            row_pattern = cache.get(pat)
            if row_pattern is None:
                row_pattern = cache[pat] = LikePattern(pat)
            out[row] = row_pattern.match(text)
        return out

    def _self_spatial(self, args: list[Node]) -> bool:
        """Both arguments are the geometry property (property-property)."""
        return all(isinstance(a, dict) and a.get("property") == GEOMETRY_PROPERTY for a in args)

    def _has_geometry(self) -> np.ndarray:
        if self.geometries is None:
            raise filter_problem("spatial functions between two properties are not available")
        geoms = self.geometries
        return ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))

    def _spatial(self, args: list[Node], predicate: str) -> np.ndarray:
        lhs, rhs = args
        if isinstance(rhs, dict) and "property" in rhs:
            lhs, rhs = rhs, lhs
            predicate = _MIRRORED.get(predicate, predicate)
        name = lhs.get("property") if isinstance(lhs, dict) else None
        if name != GEOMETRY_PROPERTY:
            if isinstance(name, str):
                self._column(name)  # an unknown property is named as such
            msg = f"spatial functions compare {GEOMETRY_PROPERTY!r} with a geometry, not {lhs!r}"
            raise filter_problem(msg)
        if isinstance(rhs, dict) and "property" in rhs:
            self._column(str(rhs["property"]))  # an unknown property is named as such
            raise filter_problem(f"{rhs['property']!r} is not a geometry")
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

    def _compare(
        self, op: Callable[[Any, Any], Any], lhs: Any, rhs: Any, args: list[Node]
    ) -> np.ndarray:
        got = self._as_mask(lambda: op(lhs, rhs), args)
        # CQL2: a comparison with a null value is not true (also <>)
        return self._present(got, lhs, rhs)

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
    def _present(got: np.ndarray, *sides: Any) -> np.ndarray:
        for side in sides:
            if isinstance(side, pd.Series):
                got = got & np.array(side.notna(), dtype=bool)
        return got
