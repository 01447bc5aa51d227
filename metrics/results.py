"""Rows from any backend -> the same typed values, and Arrow/pandas for pipelines.

Backends differ in how they hand back numbers (Decimal, int128, float) and
time buckets; here every count becomes ``int``, every other number a float
rounded to 12 significant digits (so sums of floats added in a different
order still agree to the last digit shown), and time buckets (naive UTC
instants from the compiler) become timezone-aware datetimes in the requested
zone, with the offset in force at the bucket's first instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


def _converter(data_type: DataType, zone: ZoneInfo) -> Any:
    if data_type is DataType.INTEGER:
        return lambda v: None if v is None else int(v)
    if data_type is DataType.FLOAT:
        return lambda v: None if v is None else float(f"{float(v):.{SIGNIFICANT_DIGITS}g}")
    if data_type is DataType.TIMESTAMP:
        return lambda v: None if v is None else _at_zone(v, zone)
    return lambda v: v


def _at_zone(value: datetime, zone: ZoneInfo) -> datetime:
    """An instant (naive values are UTC, as the compiler returns them) as the zone's clocks show it.

    The tzinfo is the fixed offset in force at that instant, not the zone:
    Python compares datetimes that share a ``ZoneInfo`` by their wall-clock
    reading, so the two 02:00 buckets of an autumn night would be equal keys.
    """
    local = (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(zone)
    return local.replace(tzinfo=timezone(local.utcoffset() or timedelta(0)), fold=0)


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[OutputColumn, ...]
    rows: list[tuple[Any, ...]]
    total_count: int
    timezone: str

    @classmethod
    def from_rows(cls, columns: Sequence[OutputColumn], raw: list[tuple[Any, ...]], timezone: str) -> QueryResult:
        zone = ZoneInfo(timezone)
        converters = [_converter(column.type, zone) for column in columns]
        rows = [tuple(convert(value) for convert, value in zip(converters, row, strict=False)) for row in raw]
        total = int(raw[0][len(columns)]) if raw else 0
        return cls(tuple(columns), rows, total, timezone)

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
        arrays = [pa.array([row[i] for row in self.rows], type=field.type) for i, field in enumerate(fields)]
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def to_pandas(self) -> Any:
        return self.to_arrow().to_pandas()
