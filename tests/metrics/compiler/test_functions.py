"""Each SQL construct, rendered exactly, per backend."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy.dialects.postgresql.asyncpg import dialect as AsyncpgDialect

from metrics.compiler.functions import (
    byte_order,
    divide,
    exact_sum,
    hour_of_day,
    iso_day_of_week,
    local_time,
    percentile_cont,
    seconds_between,
    truncate,
)
from metrics.model import TimeGrain

ts, x, name = sa.column("ts"), sa.column("x"), sa.column("name")
ZONE = sa.literal_column("'Europe/Berlin'")
BOTH = {
    "local_time": (local_time(ts, ZONE), "((ts AT TIME ZONE 'UTC') AT TIME ZONE 'Europe/Berlin')"),
    "local_time of an expression": (
        local_time(ts - x, ZONE),
        "(((ts - x) AT TIME ZONE 'UTC') AT TIME ZONE 'Europe/Berlin')",
    ),
    "truncate": (truncate(TimeGrain.WEEK, ts), "date_trunc('week', ts)"),
    "iso_day_of_week": (iso_day_of_week(ts), "CAST(EXTRACT(ISODOW FROM ts) AS INTEGER)"),
    "hour_of_day": (hour_of_day(ts), "CAST(EXTRACT(HOUR FROM ts) AS INTEGER)"),
    "percentile_cont": (
        percentile_cont(0.95, x),
        "percentile_cont(0.95) WITHIN GROUP (ORDER BY CAST(x AS DOUBLE PRECISION))",
    ),
    "exact_sum": (exact_sum(x, None), "CAST(CAST(sum(CAST(x AS NUMERIC(38, 9))) AS TEXT) AS DOUBLE PRECISION)"),
}
DIVIDE = {  # asyncpg's compiler casts the nullif result back to the declared type
    "postgresql": "CAST(x AS DOUBLE PRECISION) / CAST(nullif(CAST(y AS DOUBLE PRECISION), 0) AS DOUBLE PRECISION)",
    "duckdb": "CAST(x AS DOUBLE PRECISION) / nullif(CAST(y AS DOUBLE PRECISION), 0)",
}
DIALECTS = {"postgresql": AsyncpgDialect(), "duckdb": DuckDBDialect(paramstyle="qmark")}


def _sql(element: sa.ColumnElement[object], dialect: str) -> str:
    return str(element.compile(dialect=DIALECTS[dialect], compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("construct", BOTH)
def test_renders_the_same_on_both_backends(construct: str, dialect: str) -> None:
    element, expected = BOTH[construct]
    assert _sql(element, dialect) == expected


@pytest.mark.parametrize(("dialect", "expected"), [("postgresql", '(name COLLATE "C")'), ("duckdb", "name")])
def test_text_sorts_by_bytes_everywhere(dialect: str, expected: str) -> None:
    assert _sql(byte_order(name), dialect) == expected


@pytest.mark.parametrize("dialect", DIALECTS)
def test_division_is_null_where_the_divisor_is_zero(dialect: str) -> None:
    assert _sql(divide(x, sa.column("y")), dialect) == DIVIDE[dialect]


SECONDS_BETWEEN = {  # whole microseconds, divided once: exact, where a difference of two float epochs is not
    "postgresql": "CAST(EXTRACT(EPOCH FROM ((ts - x) - ts)) AS DOUBLE PRECISION)",
    "duckdb": "CAST(date_diff('microsecond', ts, ts - x) AS DOUBLE) / 1000000.0",
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_seconds_between_counts_microseconds(dialect: str) -> None:
    assert _sql(seconds_between(ts, ts - x), dialect) == SECONDS_BETWEEN[dialect]
