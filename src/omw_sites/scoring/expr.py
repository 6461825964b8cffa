"""Safe, vectorised evaluation of constraint expressions over site columns."""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping

import numpy as np

_CMP = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_BIN = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


class ExpressionError(ValueError):
    """An expression uses syntax or names that are not allowed."""


def names_in(expr: str) -> set[str]:
    """Column names an expression refers to (raises ExpressionError on bad syntax)."""
    tree = _parse(expr)
    return {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in ("True", "False")
    }


def evaluate(expr: str, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Evaluate ``expr`` (comparisons, ``and``/``or``/``not``, ``in [..]``, + − × ÷).

    Names are column arrays; no attribute access, calls or subscripts are allowed, so a
    profile file can never run code.
    """
    tree = _parse(expr)
    return np.asarray(_eval(tree.body, columns, expr))


def _parse(expr: str) -> ast.Expression:
    try:
        return ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        msg = f"cannot parse expression {expr!r}: {exc.msg}"
        raise ExpressionError(msg) from exc


def _eval(node: ast.AST, cols: Mapping[str, np.ndarray], expr: str):
    if isinstance(node, ast.BoolOp):
        vals = [np.asarray(_eval(v, cols, expr), dtype=bool) for v in node.values]
        return (
            np.logical_and.reduce(vals)
            if isinstance(node.op, ast.And)
            else np.logical_or.reduce(vals)
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ~np.asarray(_eval(node.operand, cols, expr), dtype=bool)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand, cols, expr)
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        return _BIN[type(node.op)](_eval(node.left, cols, expr), _eval(node.right, cols, expr))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, cols, expr)
        result = None
        for op, comp in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                values = _eval(comp, cols, expr)
                r = np.isin(np.asarray(left), list(values))
                r = ~r if isinstance(op, ast.NotIn) else r
                right = left
            elif type(op) in _CMP:
                right = _eval(comp, cols, expr)
                r = _CMP[type(op)](left, right)
            else:
                break
            result = r if result is None else result & r
            left = right
        else:
            return result
    if isinstance(node, ast.Name):
        if node.id in ("True", "False"):
            return node.id == "True"
        if node.id not in cols:
            msg = f"unknown name {node.id!r} in expression {expr!r}"
            raise ExpressionError(msg)
        return cols[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str | bool):
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, cols, expr) for e in node.elts]
    msg = f"expression {expr!r}: {type(node).__name__} is not allowed"
    raise ExpressionError(msg)
