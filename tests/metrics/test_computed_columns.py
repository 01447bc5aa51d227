"""A user's computed columns, in measures, row filters, value dimensions and where filters, on DuckDB and
PostgreSQL, against plain Python over the source rows, to the digits results show."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy.dialects.postgresql.asyncpg import dialect as AsyncpgDialect

from metrics.compiler import DimensionRef, MetricRequest, Predicate
from metrics.compiler.functions import seconds_between
from metrics.model import FilterOp
from metrics.registry import load_registry
from metrics.results import SIGNIFICANT_DIGITS
from tests.metrics.catalog_data import Engines, Loaded
from tests.metrics.reference import Row

BACKENDS = ("duckdb", "postgresql")
CONFIG = Path(__file__).parent / "configs" / "computed_columns"


@pytest.fixture(scope="module")
def engines(loaded: Loaded) -> Iterator[Engines]:
    """The shared catalog data, queried through a registry that includes the user's fact."""
    engines = Engines(loaded.urls, load_registry([CONFIG]))
    yield engines
    engines.close()


def _contracts(loaded: Loaded) -> list[Row]:
    return loaded.reference.current["action_contracts"]


def _wall(row: Row) -> float | None:
    return None if row["completed_at"] is None else (row["completed_at"] - row["created_at"]).total_seconds()


def _duration(row: Row) -> float | None:
    return None if row["duration_ms"] is None else row["duration_ms"] / 1000


def _overhead(row: Row) -> float | None:
    wall, duration = _wall(row), _duration(row)
    return None if wall is None or duration is None else wall - duration


def _shown(value: float) -> float:
    """A float as results show it (to SIGNIFICANT_DIGITS)."""
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _exact_sum(values: list[float]) -> float:
    """The layer sums floats exactly (as decimals of 9 places), then rounds once."""
    return _shown(float(sum(Decimal(value).quantize(Decimal("1e-9")) for value in values)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_measures_and_row_filters_over_computed_columns(backend: str, engines: Engines, loaded: Loaded) -> None:
    rows = _contracts(loaded)
    durations = [d for d in map(_duration, rows) if d is not None]
    overheads = [o for o in map(_overhead, rows) if o is not None]
    slower = sum(1 for o in overheads if o > 0)
    doubt = max(-(1 - (r["confidence"] or 0)) * 2 for r in rows)
    assert durations and overheads and 0 < slower < len(rows)
    metrics = ("avg_duration_s", "total_overhead_s", "slower_than_executed_count", "max_doubt")
    [(mean, total, count, largest)] = engines.query(backend, MetricRequest(metrics)).rows
    assert mean == pytest.approx(statistics.fmean(durations), rel=1e-12)
    assert (total, count, largest) == (_exact_sum(overheads), slower, _shown(doubt))


@pytest.mark.parametrize("backend", BACKENDS)
def test_value_dimension_and_where_filter_over_a_computed_column(
    backend: str, engines: Engines, loaded: Loaded
) -> None:
    expected: Counter[float] = Counter()
    for row in _contracts(loaded):
        if row["confidence"] is not None and row["confidence"] * 100 >= 50:
            expected[_shown(row["confidence"] * 100)] += (_overhead(row) or 0) > 0
    request = MetricRequest(
        ("slower_than_executed_count",),
        dimensions=(DimensionRef("confidence_pct"),),
        where=Predicate(DimensionRef("confidence_pct"), FilterOp.GTE, 50.0),
    )
    rows = engines.query(backend, request).rows
    assert len(expected) > 1 and dict(rows) == dict(expected)


SPANS = [
    timedelta(microseconds=1),
    timedelta(microseconds=-1),
    timedelta(seconds=90.5),
    timedelta(days=3, hours=5, microseconds=123457),
    -timedelta(days=40, seconds=1, microseconds=999999),
    timedelta(days=3650, microseconds=7),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_seconds_between_is_exact_on_every_backend(backend: str, engines: Engines) -> None:
    """Bit for bit what Python's ``timedelta.total_seconds`` gives, also for negative and multi-day spans."""
    start = datetime(2024, 2, 28, 23, 59, 59, 999999)
    dialect = {"duckdb": DuckDBDialect(paramstyle="qmark"), "postgresql": AsyncpgDialect()}[backend]

    def stamp(moment: datetime) -> sa.ColumnElement[datetime]:
        return sa.literal_column(f"TIMESTAMP '{moment.isoformat(sep=' ')}'")

    spans = [seconds_between(stamp(start), stamp(start + span)) for span in SPANS]
    sql = str(sa.select(*spans).compile(dialect=dialect))
    [row] = engines.fetch(backend, sql)
    assert [value.hex() for value in row] == [span.total_seconds().hex() for span in SPANS]
