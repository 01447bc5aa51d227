"""Query results as bytes for the result cache, and back, to the same typed values: never pickle.

A shared cache (Redis) can be written by any process that reaches it, so an
entry is data, not code: JSON (orjson) whose every value is checked against
its column's type on the way in and on the way out. Each column holds only
the type the result conversion gives it (``metrics.results``): ``int`` for
integers, a finite ``float``, ``str``, ``bool``, an aware ``datetime`` (as
ISO 8601 text with its offset), or null. A result holding anything else
(a NaN, an integer past 64 bits, a driver's own type) is ``Uncacheable``: it
is answered, not stored. An entry that does not decode to exactly that shape
is ignored (``decode`` returns None), so it is executed again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from math import isfinite
from typing import Any

import orjson

from metrics.compiler import OutputColumn
from metrics.model import DataType
from metrics.results import QueryResult, isoformats

FORMAT = 1
"""Written into every entry; an entry of another format is not read."""


class Uncacheable(Exception):
    """The result holds a value this encoding cannot give back exactly; it is not stored."""


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_float(value: Any) -> bool:
    return type(value) is float and isfinite(value)


def _is_aware(value: Any) -> bool:
    return type(value) is datetime and value.utcoffset() is not None


_ACCEPTS: dict[DataType, Callable[[Any], bool]] = {
    DataType.INTEGER: _is_int,
    DataType.FLOAT: _is_float,
    DataType.STRING: lambda value: type(value) is str,
    DataType.BOOLEAN: lambda value: type(value) is bool,
    DataType.TIMESTAMP: _is_aware,
}


def encode(result: QueryResult) -> bytes:
    """The entry of ``result``: its values by column and its total count (the columns are part of the key)."""
    columns = []
    for column, values in zip(result.columns, result.values, strict=True):
        accepts = _ACCEPTS[column.type]
        if not all(value is None or accepts(value) for value in values):
            raise Uncacheable(f"column {column.name} holds a value of a type the cache does not store")
        if column.type is DataType.TIMESTAMP:
            values = isoformats(values)
        columns.append(values)
    try:
        return orjson.dumps({"format": FORMAT, "total": result.total_count, "columns": columns})
    except orjson.JSONEncodeError as error:  # an integer past 64 bits
        raise Uncacheable(str(error)) from None


def decode(data: bytes, columns: Sequence[OutputColumn], timezone: str) -> QueryResult | None:
    """The result an entry holds for ``columns``, or None where it is not exactly such an entry."""
    try:
        entry = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        return None
    total, stored = entry.get("total"), entry.get("columns")
    if not (total is None or _is_int(total)) or not isinstance(stored, list) or len(stored) != len(columns):
        return None
    values = []
    for column, data_values in zip(columns, stored, strict=True):
        if not isinstance(data_values, list) or len(data_values) != len(stored[0]):
            return None
        if column.type is DataType.TIMESTAMP:
            data_values = _datetimes(data_values)
            if data_values is None:
                return None
        accepts = _ACCEPTS[column.type]
        if not all(value is None or accepts(value) for value in data_values):
            return None
        values.append(data_values)
    return QueryResult(tuple(columns), tuple(values), total, timezone)


def _datetimes(texts: list[Any]) -> list[datetime | None] | None:
    """Parsed back to one shared object per distinct text, as the result conversion shares one per bucket."""
    parsed: dict[str, datetime] = {}
    values: list[datetime | None] = []
    for text in texts:
        if text is None:
            values.append(None)
            continue
        if type(text) is not str:
            return None
        value = parsed.get(text)
        if value is None:
            try:
                value = parsed[text] = datetime.fromisoformat(text)
            except ValueError:
                return None
        values.append(value)
    return values
