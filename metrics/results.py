"""Rows from any backend -> the same typed values, and Arrow/pandas for pipelines.

Backends differ in how they hand back numbers (Decimal, int128, float) and
time buckets; here every count becomes ``int``, every other number a float
rounded to 12 significant digits (so sums of floats added in a different
order still agree to the last digit shown), and time buckets (naive UTC
instants from the compiler) become timezone-aware datetimes in the requested
zone, with the offset in force at the bucket's first instant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from metrics.compiler import OutputColumn
from metrics.model import DataType

SIGNIFICANT_DIGITS = 12

_ARROW = {
    DataType.INTEGER: pa.int64(),
    DataType.FLOAT: pa.float64(),
    DataType.STRING: pa.string(),
    DataType.BOOLEAN: pa.bool_(),
}


def _converter(data_type: DataType, zone: ZoneInfo) -> Callable[[Any], Any] | None:
    """How a backend's value of ``data_type`` becomes the typed value; None where it already is one."""
    if data_type is DataType.INTEGER:
        return lambda v: v if v is None or type(v) is int else int(v)
    if data_type is DataType.FLOAT:
        return lambda v: None if v is None else float(f"{float(v):.{SIGNIFICANT_DIGITS}g}")
    if data_type is DataType.TIMESTAMP:
        return _bucket_converter(zone)
    return None


def _bucket_converter(zone: ZoneInfo) -> Callable[[Any], Any]:
    """Time buckets repeat down a column (one per tier, per agent...): each distinct instant is converted once."""
    converted: dict[datetime, datetime] = {}

    def convert(value: datetime | None) -> datetime | None:
        if value is None:
            return None
        found = converted.get(value)
        if found is None:
            found = converted[value] = _at_zone(value, zone)
        return found

    return convert


def _at_zone(value: datetime, zone: ZoneInfo) -> datetime:
    """An instant (naive values are UTC, as the compiler returns them) as the zone's clocks show it.

    The tzinfo is the fixed offset in force at that instant, not the zone:
    Python compares datetimes that share a ``ZoneInfo`` by their wall-clock
    reading, so the two 02:00 buckets of an autumn night would be equal keys.
    """
    if value.tzinfo is None and zone.key == "UTC":
        return value.replace(tzinfo=UTC)  # what the general path gives: UTC's fixed offset is UTC itself
    local = (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(zone)
    return local.replace(tzinfo=timezone(local.utcoffset() or timedelta(0)), fold=0)


@dataclass(frozen=True)
class QueryResult:
    """A result held by column: the GraphQL layer and Arrow read whole columns, so no row is built twice."""

    columns: tuple[OutputColumn, ...]
    values: tuple[list[Any], ...]
    """One list per column, in the order of ``columns``."""
    total_count: int | None
    """Rows before limit and offset; None where the request did not ask for it."""
    timezone: str
    from_cache: bool | None = field(default=None, compare=False)
    """True: served from the result cache; False: executed (and offered to it); None: the cache was not consulted
    (turned off, or a warehouse without a data version). Not part of the value: equal answers are equal."""

    @classmethod
    def from_rows(
        cls, columns: Sequence[OutputColumn], raw: list[tuple[Any, ...]], timezone: str, *, counted: bool = False
    ) -> QueryResult:
        """``raw`` rows carry one more value after the columns' when ``counted``: the ``count(*) OVER ()``."""
        zone = ZoneInfo(timezone)
        transposed = list(zip(*raw, strict=True)) if raw else [() for _ in range(len(columns) + counted)]
        values = tuple(
            _convert(_converter(column.type, zone), data, column.type)
            for column, data in zip(columns, transposed, strict=False)
        )
        total = (int(raw[0][len(columns)]) if raw else 0) if counted else None
        return cls(tuple(columns), values, total, timezone)

    def __len__(self) -> int:
        return len(self.values[0]) if self.values else 0

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        return list(zip(*self.values, strict=True)) if self.values else []

    def column(self, name: str) -> list[Any]:
        return self.values[[column.name for column in self.columns].index(name)]

    def records(self) -> list[dict[str, Any]]:
        names = [column.name for column in self.columns]
        return [dict(zip(names, row, strict=True)) for row in self.rows]

    def to_arrow(self) -> pa.Table:
        fields = [
            pa.field(
                column.name,
                pa.timestamp("us", tz=self.timezone) if column.type is DataType.TIMESTAMP else _ARROW[column.type],
            )
            for column in self.columns
        ]
        arrays = [pa.array(data, type=field.type) for data, field in zip(self.values, fields, strict=True)]
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def to_pandas(self) -> Any:
        return self.to_arrow().to_pandas()


def isoformats(values: Sequence[datetime | None]) -> list[str | None]:
    """Time buckets as ISO 8601 text, each bucket object formatted once (a bucket repeats down its column as one
    shared object). By identity, not equality: aware datetimes of one instant at different offsets are equal."""
    texts: dict[int, str] = {}
    out: list[str | None] = []
    for value in values:
        if value is None:
            out.append(None)
            continue
        if id(value) not in texts:
            texts[id(value)] = value.isoformat()
        out.append(texts[id(value)])
    return out


_INT_OR_NULL = {int, type(None)}


def _convert(converter: Callable[[Any], Any] | None, data: Sequence[Any], data_type: DataType) -> list[Any]:
    """The column converted; a column of counts the driver already gave as ints is taken as it is."""
    if converter is None or (data_type is DataType.INTEGER and set(map(type, data)) <= _INT_OR_NULL):
        return list(data)
    return list(map(converter, data))
