"""One raw source row checked and parsed against sources.md, value by value: the reference check.

SQLite is dynamically typed and a source may enforce no constraint, so any
value can be of the wrong type or NULL where the contract says it never is.
Batches are checked in bulk (``warehouse.etl.parse``); the row a batch check
marks comes here with the values the driver returned, so ``BadSourceValue``
names table, key, column and value exactly.

Most values need nothing: text, integers and floats arrive as they are, so
a value of its column's ready type is taken after one type check, and only
the others (timestamps, SQLite's 0/1 booleans, JSON text, bad values) reach
a parser. Columns that are nullable text are not looked at at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from json import JSONDecodeError
from typing import Any, NamedTuple

import sqlalchemy as sa

from warehouse.errors import BadSourceValue
from warehouse.etl.values import boolean, integer, json_value, real, utc_timestamp

Row = dict[str, Any]


class _Unparsed:
    """The type of no source value: for columns whose every value goes through the parser."""


class _Parser(NamedTuple):
    sql_type: type[sa.types.TypeEngine[Any]]
    ready: type
    """Values of exactly this type are taken as they are."""
    parse: Callable[[Any], Any]
    expected: str


_PARSERS = (
    _Parser(sa.DateTime, _Unparsed, utc_timestamp, "an ISO-8601 timestamp"),
    _Parser(sa.Boolean, bool, boolean, "a boolean"),  # SQLite hands out 0 and 1
    _Parser(sa.Integer, int, integer, "an integer"),
    _Parser(sa.Float, float, real, "a number"),
    _Parser(sa.JSON, _Unparsed, json_value, "JSON"),
)


class _Column(NamedTuple):
    name: str
    ready: type
    parse: Callable[[Any], Any] | None
    """None for text, which needs no parsing."""
    expected: str
    nullable: bool


def _column(column: sa.Column[Any]) -> _Column:
    for parser in _PARSERS:
        if isinstance(column.type, parser.sql_type):
            return _Column(column.name, parser.ready, parser.parse, parser.expected, bool(column.nullable))
    return _Column(column.name, str, None, "text", bool(column.nullable))


@functools.cache
def _columns(table: sa.Table) -> tuple[_Column, ...]:
    """The columns of ``table`` that need a look: all but nullable text."""
    columns = (_column(column) for column in table.columns)
    return tuple(column for column in columns if column.parse is not None or not column.nullable)


def parse_row(table: sa.Table, key: str, row: Row) -> Row:
    """Checks and parses ``row`` of ``table`` (natural key column ``key``) in place; the extractor's dicts are fresh."""
    for name, ready, parse, expected, nullable in _columns(table):
        value = row[name]
        if type(value) is ready:
            continue
        if value is None:
            if not nullable:
                raise BadSourceValue(table.name, row[key], name, value, f"{expected} (the column may not be NULL)")
        elif parse is not None:
            try:
                row[name] = parse(value)
            except (ValueError, TypeError, JSONDecodeError):
                raise BadSourceValue(table.name, row[key], name, value, expected) from None
    return row
