"""OGC API Features Part 3 filters: CQL2 text or JSON, checked and parsed by ``cql2``.

Every filter is checked against the limits of ``api/limits.py`` before a parser sees it:
length, nesting depth and operator count, and for cql2-text the work the backtracking
parser would do. The parsed tree is checked again (arithmetic chains nest without
parentheses); :mod:`omw_sites.api.cql_evaluation` turns it into a row mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cql2
import orjson

from omw_sites.api.limits import (
    MAX_FILTER_CHARS,
    MAX_FILTER_DEPTH,
    MAX_FILTER_PARSE_COST,
    MAX_FILTER_TERMS,
)
from omw_sites.api.problems import ProblemError, bad_parameter

CQL2_TEXT = "cql2-text"
CQL2_JSON = "cql2-json"
CQL_TEXT = "cql-text"  # the draft's name, sent by GDAL's OAPIF driver: read as cql2-text
FILTER_LANGS = (CQL2_TEXT, CQL2_JSON, CQL_TEXT)
Node = Any  # a CQL2-JSON node: dict, list or scalar
# cql2-json containers per operator level (an operator object and its "args" array),
# plus a GeometryCollection literal's own nesting (collection, geometries, geometry,
# coordinates four deep).
_MAX_JSON_DEPTH = 2 * MAX_FILTER_DEPTH + 8


def filter_problem(reason: str, **values: Any) -> ProblemError:
    return bad_parameter("filter", reason, **values)


# ---------------------------------------------------------------- limits before parsing


@dataclass(frozen=True)
class TextShape:
    """What a linear scan of cql2-text finds, before any parser runs."""

    depth: int  # deepest nesting of parentheses, NOT and unary minus
    terms: int  # operators and function calls
    parse_cost: int  # sum over characters of 2 ** (parentheses around the character)


_WORD_OPERATORS = frozenset({"AND", "OR", "NOT", "LIKE", "IN", "BETWEEN", "IS", "DIV"})
_SYMBOL_OPERATORS = ("<>", "<=", ">=", "!=", "||", "=", "<", ">", "+", "*", "/", "%", "^")


def _quoted_end(text: str, i: int) -> int:
    """Index after the literal or quoted identifier opened at ``i`` ('' escapes a quote
    inside a string literal)."""
    quote, n = text[i], len(text)
    j = i + 1
    while j < n:
        if text[j] == quote:
            if quote == "'" and j + 1 < n and text[j + 1] == "'":
                j += 2  # '' is a quote inside the literal
                continue
            return j + 1
        j += 1
    what = "string literal" if quote == "'" else "quoted property name"
    raise filter_problem(f"unclosed {what} starting at character {i + 1}")


def _word_end(text: str, i: int) -> int:
    j = i + 1
    while j < len(text) and (text[j].isalnum() or text[j] in "_.:"):
        j += 1
    return j


def _digits_end(text: str, j: int, dot: bool) -> int:
    while j < len(text) and (text[j].isdigit() or (dot and text[j] == ".")):
        j += 1
    return j


def _number_end(text: str, i: int) -> int | None:
    """Index after the number (with its sign) starting at ``i``, None if none does:
    "-2" in POINT(1 -2) is no operator (a subtraction written "1 -2" is counted by the
    check of the parsed tree instead)."""
    n, ch = len(text), text[i]
    after_digit = i + 1 < n and text[i + 1].isdigit()
    signed = ch in "+-" and i + 1 < n and (after_digit or text[i + 1] == ".")
    if not (signed or ch.isdigit() or (ch == "." and after_digit)):
        return None
    j = _digits_end(text, i + 1, dot=True)
    if j < n and text[j] in "eE":
        k = j + 1 + (j + 1 < n and text[j + 1] in "+-")
        if k < n and text[k].isdigit():
            j = _digits_end(text, k, dot=False)
    return j


class _TextScan:
    """The state of :func:`scan_text`'s pass over the text."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, int]] = []  # enclosing groups: (base depth, prefix run)
        self.base = 0  # nesting depth of the current parenthesised group
        self.prefix = 0  # NOT / unary minus in a row at this level (reset by AND, OR, commas)
        self.depth = self.terms = self.cost = 0
        self.operand = False  # the last token was a value (so "-" after it is binary)

    def word(self, word: str) -> None:
        if word in _WORD_OPERATORS:
            self.terms += 1
            if word == "NOT":
                self.prefix += 1
            elif word in ("AND", "OR"):
                self.prefix = 0
            self.operand = False
        else:
            self.operand = True
        self.depth = max(self.depth, self.base + self.prefix)

    def open(self, i: int) -> None:
        if self.operand:  # NAME( is a function call
            self.terms += 1
        self.stack.append((self.base, self.prefix))
        self.base += self.prefix + 1
        self.prefix = 0
        self.depth = max(self.depth, self.base)
        self.operand = False

    def close(self, i: int) -> None:
        if not self.stack:
            raise filter_problem(f"unbalanced parentheses: ')' at character {i + 1}")
        self.base, self.prefix = self.stack.pop()
        self.prefix = 0
        self.operand = True

    def comma(self, i: int) -> None:
        self.prefix = 0
        self.operand = False

    def minus(self, i: int) -> None:
        self.terms += 1
        if not self.operand:  # unary minus nests like NOT
            self.prefix += 1
            self.depth = max(self.depth, self.base + self.prefix)
        self.operand = False


_PUNCTUATION = {
    "(": _TextScan.open,
    ")": _TextScan.close,
    ",": _TextScan.comma,
    "-": _TextScan.minus,
}


def scan_text(text: str) -> TextShape:
    """Measure ``text`` without parsing it: one pass, string literals (with '' escapes)
    and quoted identifiers skipped. Unbalanced parentheses and unclosed literals are
    refused here (a 400), as the parser would spend exponential time on them.
    """
    scan = _TextScan()
    i = 0
    while i < len(text):
        ch = text[i]
        weight = 1 << len(scan.stack)  # parse cost doubles inside each parenthesis
        if ch in "'\"":
            j = _quoted_end(text, i)
            scan.operand = True
        elif ch.isalpha() or ch == "_":
            j = _word_end(text, i)
            scan.word(text[i:j].upper())
        elif (number_end := _number_end(text, i)) is not None:
            j = number_end
            scan.operand = True
        elif ch in _PUNCTUATION:
            j = i + 1
            _PUNCTUATION[ch](scan, i)
        else:
            symbol = next((s for s in _SYMBOL_OPERATORS if text.startswith(s, i)), None)
            j = i + (len(symbol) if symbol else 1)
            if symbol is not None:
                scan.terms += 1
                scan.operand = False
        scan.cost += weight * (j - i)
        i = j
    if scan.stack:
        raise filter_problem(f"unbalanced parentheses: {len(scan.stack)} '(' never closed")
    return TextShape(scan.depth, scan.terms, scan.cost)


def tree_shape(node: Node) -> tuple[int, int, int]:
    """(operator nesting depth, operator count, JSON container depth) of a CQL2-JSON
    tree, walked without recursion; stops early once a limit is passed."""
    op_depth = ops = json_depth = 0
    stack: list[tuple[Node, int, int]] = [(node, 0, 0)]
    while stack:
        item, ops_above, containers = stack.pop()
        if isinstance(item, dict):
            containers += 1
            if "op" in item:
                ops += 1
                ops_above += 1
            children = list(item.values())
        elif isinstance(item, list):
            containers += 1
            children = item
        else:
            continue
        op_depth = max(op_depth, ops_above)
        json_depth = max(json_depth, containers)
        if op_depth > MAX_FILTER_DEPTH or ops > MAX_FILTER_TERMS or json_depth > _MAX_JSON_DEPTH:
            break
        stack.extend((child, ops_above, containers) for child in children)
    return op_depth, ops, json_depth


def _check_tree(node: Node) -> None:
    op_depth, ops, json_depth = tree_shape(node)
    if op_depth > MAX_FILTER_DEPTH:
        raise filter_problem(
            "operators nest more than %(n)s deep; the limit is %(limit)s",
            n=str(op_depth - 1),
            limit=str(MAX_FILTER_DEPTH),
        )
    if ops > MAX_FILTER_TERMS:
        raise filter_problem(
            "more than %(n)s operators; the limit is %(limit)s operators",
            n=str(ops - 1),
            limit=str(MAX_FILTER_TERMS),
        )
    if json_depth > _MAX_JSON_DEPTH:
        raise filter_problem(
            f"JSON nests more than {json_depth - 1} levels; the limit is {_MAX_JSON_DEPTH}"
        )


def check_text(text: str) -> TextShape:
    """Refuse cql2-text beyond the limits (400 naming the limit and the value found)."""
    shape = scan_text(text)
    if shape.depth > MAX_FILTER_DEPTH:
        raise filter_problem(
            "parentheses, NOT and minus signs nest %(n)s deep; the limit is %(limit)s",
            n=str(shape.depth),
            limit=str(MAX_FILTER_DEPTH),
        )
    if shape.terms > MAX_FILTER_TERMS:
        raise filter_problem(
            "%(n)s operators; the limit is %(limit)s operators",
            n=str(shape.terms),
            limit=str(MAX_FILTER_TERMS),
        )
    if shape.parse_cost > MAX_FILTER_PARSE_COST:
        raise filter_problem(
            "parentheses nest too deeply for the filter's length: parser work %(n)s, the "
            "limit is %(limit)s (each character counts 2^k inside k parentheses); use fewer "
            "parentheses or a shorter filter",
            n=shape.parse_cost,
            limit=MAX_FILTER_PARSE_COST,
        )
    return shape


def parse_filter(text: str, lang: str) -> Node:
    """Parse ``text`` as CQL2 in ``lang`` into CQL2-JSON; a 400 problem when it is not CQL2
    or is beyond the limits of ``api/limits.py``."""
    if len(text) > MAX_FILTER_CHARS:
        raise filter_problem(
            "the filter is %(n)s characters long; the limit is %(limit)s",
            n=len(text),
            limit=MAX_FILTER_CHARS,
        )
    try:
        if lang == CQL2_JSON:
            try:
                raw = orjson.loads(text)  # orjson stops at 1,024 levels by itself
            except orjson.JSONDecodeError as exc:
                raise filter_problem("not JSON: %(error)s", error=str(exc)) from None
            _check_tree(raw)
            expr = cql2.parse_json(text)
        else:
            check_text(text)
            expr = cql2.parse_text(text)
        node = expr.to_json()
    except ProblemError:
        raise
    except Exception as exc:  # cql2.ParseError, ValidationError, ValueError
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        detail = " ".join(lines[:6]) if lines else type(exc).__name__
        raise filter_problem("not valid %(lang)s: %(error)s", lang=lang, error=detail) from None
    _check_tree(node)  # e.g. "1 + 1 + ... + 1" nests one level per "+"
    return node
