"""CQL2 filters: limits checked before the parser, LIKE without backtracking, the evaluator's
depth bound, property-property comparisons and CASEI's full case folding."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample_store import make_sample_store

from omw_sites.api import cql
from omw_sites.api.cql import parse_filter, scan_text
from omw_sites.api.cql_evaluation import FilterEvaluator, LikePattern, like_column
from omw_sites.api.limits import (
    MAX_FILTER_CHARS,
    MAX_FILTER_DEPTH,
    MAX_FILTER_PARSE_COST,
    MAX_FILTER_TERMS,
    MAX_LIKE_PATTERN,
)
from omw_sites.api.problems import ProblemError

ITEMS = "/collections/sites/items"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"


def like_regex(pattern: str) -> re.Pattern[str]:
    """The reference semantics: the backtracking regex the server used to run."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


# ------------------------------------------------------------------- LIKE


@settings(max_examples=1500, deadline=None, database=None, derandomize=True)
@given(
    pattern=st.text(alphabet="ab%_\\\nß", max_size=12),
    texts=st.lists(st.text(alphabet="abß_%\\\n", max_size=10), max_size=8),
)
def test_like_matches_the_regex_semantics(pattern: str, texts: list[str]) -> None:
    """``%`` any run, ``_`` one character, ``\\`` escapes (a trailing one is itself),
    newlines included: the segment matcher and Arrow's kernel agree with the regex."""
    expected = [like_regex(pattern).fullmatch(t) is not None for t in texts]
    compiled = LikePattern(pattern)
    assert [compiled.match(t) for t in texts] == expected
    if texts:
        column = pd.Series(texts + [None], dtype=object)
        assert like_column(column, compiled).tolist() == [*expected, False]


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(
    st.lists(
        st.tuples(
            st.none() | st.text(alphabet="ab%_\\", max_size=6),
            st.none() | st.text(alphabet="ab%_\\", max_size=6),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_like_with_a_pattern_per_row(rows: list[tuple[str | None, str | None]]) -> None:
    """``a LIKE b`` (property-property) and ``'lit' LIKE b``: each row's own pattern;
    a missing value on either side does not match."""
    table = pd.DataFrame(rows, columns=["a", "b"], dtype=object)
    evaluator = FilterEvaluator(table, lambda g, p: np.array([], int))
    expected = [
        a is not None and b is not None and like_regex(b).fullmatch(a) is not None for a, b in rows
    ]
    assert evaluator.mask(parse_filter("a LIKE b", "cql2-text")).tolist() == expected
    literal = [b is not None and like_regex(b).fullmatch("ab") is not None for _, b in rows]
    assert evaluator.mask(parse_filter("'ab' LIKE b", "cql2-text")).tolist() == literal


@pytest.mark.parametrize(
    "pattern",
    [
        "%" * 12 + "a",
        "%" * 28 + "a",
        "%a" * 100 + "%",
        "_%" * (MAX_LIKE_PATTERN // 2),
        "%" + "_" * 40 + "%x",
    ],
)
def test_like_is_linear_on_wildcard_heavy_patterns(pattern: str) -> None:
    """The regex version took 17.5 s for 12 ``%`` on a site table and never ended for 28."""
    values = pd.Series([f"S{i:010x}" for i in range(100_000)], dtype=object)
    compiled = LikePattern(pattern)
    start = time.perf_counter()
    vectorised = like_column(values, compiled)
    rowwise = np.array([compiled.match(v) for v in values.iloc[:20_000]])
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"{pattern!r}: {elapsed:.2f} s"
    assert (vectorised[:20_000] == rowwise).all()
    expected = values.str.endswith("a") if pattern.endswith("a") else None
    if expected is not None:
        assert (vectorised == expected.to_numpy()).all()


# ------------------------------------------------------------------- limits


def test_scan_skips_literals_and_measures_nesting() -> None:
    shape = scan_text("a = '((( NOT '' )' AND \"b\" = -5 AND NOT (c < 1e-5 OR d IN (1, -2))")
    assert shape.depth == 3  # NOT ( ... IN ( ...: the parentheses in the literal do not count
    assert shape.terms == 8  # = AND = AND NOT < OR IN
    assert scan_text("NOT " * 40 + "a = 1").depth == 40
    assert scan_text("a = " + "- " * 10 + "1").depth == 10
    text = "(" * 3 + "a" + ")" * 3
    assert scan_text(text).parse_cost == 1 + 2 + 4 + 8 + 8 + 4 + 2


@pytest.mark.parametrize(
    ("text", "lang", "needles"),
    [
        ("(" * 3000 + "a = 1" + ")" * 3000, "cql2-text", ("3000 deep", f"{MAX_FILTER_DEPTH}")),
        ("NOT " * 2000 + "a = 1", "cql2-text", ("2000 deep", f"{MAX_FILTER_DEPTH}")),
        ("NOT " * 3500 + "a = 1", "cql2-text", ("14,005 characters", "8,192")),
        ("a = " + "-" * 3500 + "1", "cql2-text", ("deep", f"{MAX_FILTER_DEPTH}")),
        ("(" * 24 + "a = 1", "cql2-text", ("unbalanced",)),
        ("a = 1" + ")" * 3, "cql2-text", ("unbalanced",)),
        ("a = 'x", "cql2-text", ("unclosed string",)),
        ("(" * 20 + "a = 1 AND" + ")" * 20, "cql2-text", ("parser work", "131,072")),
        (" AND ".join(["a = 1"] * 300), "cql2-text", ("599 operators", f"{MAX_FILTER_TERMS}")),
        ("a IN (" + ",".join(["'x'"] * 3000) + ")", "cql2-text", ("characters", "8,192")),
        (
            '{"op":"not","args":[' * 40 + '{"op":"=","args":[{"property":"a"},1]}' + "]}" * 40,
            "cql2-json",
            ("nest", f"{MAX_FILTER_DEPTH}"),
        ),
        ("[" * 500 + "]" * 500, "cql2-json", ("JSON nests", "72")),
        ("[" * 5000 + "]" * 5000, "cql2-json", ("characters",)),
    ],
)
def test_limits_are_checked_before_any_parser(
    monkeypatch: pytest.MonkeyPatch, text: str, lang: str, needles: tuple[str, ...]
) -> None:
    def no_parser(_: str) -> Any:
        raise AssertionError("the parser ran on input beyond the limits")

    monkeypatch.setattr(cql.cql2, "parse_text", no_parser)
    monkeypatch.setattr(cql.cql2, "parse_json", no_parser)
    with pytest.raises(ProblemError) as err:
        parse_filter(text, lang)
    assert err.value.status == 400
    (param,) = err.value.invalid_params or []
    assert param["name"] == "filter"
    for needle in needles:
        assert needle in str(param["reason"])  # the English text of the reason


def test_limits_leave_room_for_real_filters() -> None:
    polygon = ", ".join(f"{20 + i / 1000:.4f} {52 + (i % 7) / 100:.4f}" for i in range(300))
    filters = [
        "teryt IN (" + ", ".join(f"'14{i:05d}'" for i in range(700)) + ")",  # every gmina
        f"S_INTERSECTS(geometry, POLYGON(({polygon}, 20.0000 52.0000))) AND area_ha > 2",
        " OR ".join(f"(area_ha > {i} AND NOT (ownership = 'state'))" for i in range(40)),
        "((((((((((((area_ha > 1))))))))))))",  # GDAL-style parentheses, 12 deep
        "NOT " * (MAX_FILTER_DEPTH - 1) + "area_ha > 1",  # 32 operators deep
    ]
    for text in filters:
        assert len(text) <= MAX_FILTER_CHARS
        shape = scan_text(text)
        assert shape.parse_cost <= MAX_FILTER_PARSE_COST
        assert parse_filter(text, "cql2-text")


def test_parsed_tree_is_checked_too() -> None:
    """An arithmetic chain nests one level per operator without any parenthesis."""
    text = "area_ha = " + " + ".join(["1"] * 100)
    assert scan_text(text).depth == 0
    with pytest.raises(ProblemError, match=f"nest more than .* the limit is {MAX_FILTER_DEPTH}"):
        parse_filter(text, "cql2-text")


def test_evaluator_does_not_recurse_past_the_limit() -> None:
    node: Any = {"op": "=", "args": [{"property": "a"}, 1]}
    for _ in range(5000):  # deeper than Python's recursion limit
        node = {"op": "not", "args": [node]}
    evaluator = FilterEvaluator(pd.DataFrame({"a": [1, 2]}), lambda g, p: np.array([], int))
    with pytest.raises(ProblemError, match=f"limit of {MAX_FILTER_DEPTH}"):
        evaluator.mask(node)
    node = "x"
    for _ in range(5000):
        node = {"op": "casei", "args": [node]}
    with pytest.raises(ProblemError, match=f"limit of {MAX_FILTER_DEPTH}"):
        evaluator.mask({"op": "=", "args": [node, "x"]})


def test_evaluation_time_is_bounded() -> None:
    table = pd.DataFrame({"a": [f"S{i:06d}" for i in range(50_000)]})
    table["b"] = "%" + table["a"].str[-3:] + "%"
    evaluator = FilterEvaluator(table, lambda g, p: np.array([], int), max_seconds=0.0)
    node = parse_filter("a LIKE b", "cql2-text")
    with pytest.raises(ProblemError, match="longer than 0 s"):
        evaluator.mask(node)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.text(alphabet="()NOT ANDOR'a=1-,%_\"", max_size=200))
def test_random_text_is_parsed_or_refused(text: str) -> None:
    """Anything is either a tree or a 400, quickly."""
    start = time.perf_counter()
    try:
        parse_filter(text, "cql2-text")
    except ProblemError as exc:
        assert exc.status == 400
    assert time.perf_counter() - start < 1.0


# ------------------------------------------------------------------- semantics over HTTP


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_store(tmp_path_factory.mktemp("cql") / "omw.gpkg", n=300, seed=11)


def matched(client: httpx.Client, text: str, **params: str) -> list[str]:
    r = client.get(ITEMS, params={"filter": text, "limit": 10000, **params})
    assert r.status_code == 200, r.text
    return [f["id"] for f in r.json()["features"]]


def test_property_property_like(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    assert matched(client, "gmina LIKE gmina") == sites["site_id"].tolist()
    # a row's own pattern: '1P/U' LIKE zoning_symbol, and a pattern column with wildcards
    truth = sites.loc[sites.zoning_symbol == "1P/U", "site_id"].tolist()
    assert 0 < len(truth) < len(sites)
    assert matched(client, "'1P/U' LIKE zoning_symbol") == truth
    assert matched(client, "zoning_symbol LIKE zoning_class") == []


def test_property_property_in(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    truth = sites.loc[sites.ownership == "state", "site_id"].tolist()
    assert matched(client, "'Warszawa' IN (ownership, gmina)") == sites["site_id"].tolist()
    assert matched(client, "ownership IN (gmina, 'state')") == truth
    both = sites.rank_office.notna() & (sites.rank_office == sites.rank_logistics)
    ones = sites.rank_office == 1
    expected = sites.loc[both | ones, "site_id"].tolist()
    assert 0 < len(expected)
    assert matched(client, "rank_office IN (rank_logistics, 1)") == expected
    doc = {"op": "in", "args": [{"property": "ownership"}, [{"property": "gmina"}, "state"]]}
    assert matched(client, json.dumps(doc), **{"filter-lang": "cql2-json"}) == truth


def test_geometry_to_geometry(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    has = sites.loc[~(sites.geometry.is_empty | sites.geometry.isna()), "site_id"].tolist()
    assert len(has) == len(sites)
    assert matched(client, "S_INTERSECTS(geometry, geometry)") == has
    assert matched(client, "S_WITHIN(geometry, geometry)") == has
    assert matched(client, "S_TOUCHES(geometry, geometry)") == []
    assert matched(client, "S_DISJOINT(geometry, geometry)") == []


def test_casei_folds_case_fully(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    everyone = sites["site_id"].tolist()
    assert matched(client, "CASEI('STRASSE') = CASEI('straße')") == everyone
    assert matched(client, "CASEI(gmina) = CASEI('WARSZAWA')") == everyone
    assert matched(client, "CASEI(gmina) LIKE CASEI('WARSZ%')") == everyone
    assert matched(client, "gmina LIKE 'WARSZ%'") == []  # LIKE alone is case-sensitive


def test_casei_on_a_table() -> None:
    table = pd.DataFrame({"name": ["Straße", "STRASSE", "strasse", "Strase", None]})
    evaluator = FilterEvaluator(table, lambda g, p: np.array([], int))
    got = evaluator.mask(parse_filter("CASEI(name) = CASEI('STRASSE')", "cql2-text"))
    assert got.tolist() == [True, True, True, False, False]
    got = evaluator.mask(parse_filter("CASEI(name) LIKE CASEI('%SS%')", "cql2-text"))
    assert got.tolist() == [True, True, True, False, False]


def test_conformance_declares_what_is_implemented(client: httpx.Client) -> None:
    conforms = set(client.get("/conformance").json()["conformsTo"])
    assert {CQL2 + "property-property", CQL2 + "case-insensitive-comparison"} <= conforms
