"""A fact's columns as SQL: physical ones by name, computed ones as their expression over the others.

The expression was checked at load (``metrics.validation``), so every name is
a column of the same fact, every call a known function with its arity, and
there are no cycles.
"""

from __future__ import annotations

import ast
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement, TableClause

from metrics.compiler.functions import divide, seconds_between
from metrics.expressions import parse
from metrics.model import Fact


def physical_columns(fact: Fact) -> set[str]:
    """The names the fact's table must have: its time, its plain columns and its dimension paths' columns."""
    names = {fact.time, *fact.columns, *(p.column for p in fact.dimensions.values() if p.column)}
    names |= {p.bridge.key for p in fact.dimensions.values() if p.bridge}
    return names - set(fact.expressions)


def fact_column(fact: Fact, table: TableClause, name: str) -> ColumnElement[Any]:
    expression = fact.expressions.get(name)
    if expression is None:
        return table.c[name]
    return _compile(fact, table, parse(expression, calls=True))


def _compile(fact: Fact, table: TableClause, node: ast.expr) -> ColumnElement[Any]:
    if isinstance(node, ast.Name):
        return fact_column(fact, table, node.id)
    if isinstance(node, ast.Constant):
        return sa.literal(node.value, sa.Integer() if isinstance(node.value, int) else sa.Double())
    if isinstance(node, ast.UnaryOp):
        operand = _compile(fact, table, node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _compile(fact, table, node.left), _compile(fact, table, node.right)
        if isinstance(node.op, ast.Div):
            return divide(left, right)  # true division, and null where the divisor is 0, on every backend
        return {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}[type(node.op)]
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    arguments = [_compile(fact, table, argument) for argument in node.args]
    if node.func.id == "seconds_between":
        return seconds_between(*arguments)
    return sa.func.coalesce(*arguments)
