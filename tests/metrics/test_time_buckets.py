"""Time values are instants: buckets across clock changes, in half-hour zones, where midnight does not
exist, and timestamp-valued metrics (a maximum of ``resolved_at``).

A few error events sit on either side of each clock change; the expected
buckets are written out by hand as the instant the bucket starts, with the
offset the zone's clocks show at that instant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from metrics.compiler import DimensionRef, MetricCondition, MetricRequest, TimeRange
from metrics.engine import MetricsEngine
from metrics.model import FilterOp
from metrics.registry import load_registry
from metrics.results import QueryResult
from tests.warehouse.sourcedb import SourceDB
from warehouse.etl import run_etl

BACKENDS = ("duckdb", "postgresql")
CONFIGS = Path(__file__).parent / "configs"
RESOLVED = (0, 3)
"""Events resolved an hour after they occurred: 2025-03-30 01:59:30 and 2025-10-26 01:30 UTC."""
EVENTS = [
    # Berlin, spring 2025: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
    datetime(2025, 3, 30, 0, 59, 30),
    datetime(2025, 3, 30, 1, 0),
    datetime(2025, 3, 30, 1, 10),
    # Berlin, autumn 2025: 03:00 CEST becomes 02:00 CET at 01:00 UTC, so 02:xx happens twice.
    datetime(2025, 10, 26, 0, 30),
    datetime(2025, 10, 26, 0, 45),
    datetime(2025, 10, 26, 1, 30),
    datetime(2025, 10, 26, 22, 59),
    datetime(2025, 10, 26, 23, 0),
    # Kolkata is +05:30 all year: 05:59 and 06:00 IST.
    datetime(2025, 6, 1, 0, 29),
    datetime(2025, 6, 1, 0, 30),
    # Santiago, 2024-09-08: midnight -04 becomes 01:00 -03; 2024-09-07 23:59 -04, then 07:00 -03.
    datetime(2024, 9, 8, 3, 59),
    datetime(2024, 9, 8, 10, 0),
    # Beirut, 2023-03-26: midnight +02 became 01:00 +03.
    datetime(2023, 3, 26, 10, 0),
]


def at(offset_hours: float, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone(timedelta(hours=offset_hours)))  # type: ignore[misc]


Ask = Callable[[str, MetricRequest], QueryResult]

CASES = {
    "berlin-spring-hour": (
        "Europe/Berlin",
        "hour",
        datetime(2025, 3, 29),
        datetime(2025, 3, 31),
        {at(1, 2025, 3, 30, 1): 1, at(2, 2025, 3, 30, 3): 2},
    ),
    "berlin-spring-minute": (
        "Europe/Berlin",
        "minute",
        datetime(2025, 3, 29),
        datetime(2025, 3, 31),
        {at(1, 2025, 3, 30, 1, 59): 1, at(2, 2025, 3, 30, 3, 0): 1, at(2, 2025, 3, 30, 3, 10): 1},
    ),
    "berlin-autumn-hour": (
        "Europe/Berlin",
        "hour",
        datetime(2025, 10, 26),
        datetime(2025, 10, 26, 12),
        {at(2, 2025, 10, 26, 2): 2, at(1, 2025, 10, 26, 2): 1},
    ),
    "berlin-autumn-minute": (
        "Europe/Berlin",
        "minute",
        datetime(2025, 10, 26),
        datetime(2025, 10, 26, 12),
        {at(2, 2025, 10, 26, 2, 30): 1, at(2, 2025, 10, 26, 2, 45): 1, at(1, 2025, 10, 26, 2, 30): 1},
    ),
    "berlin-autumn-day": (
        "Europe/Berlin",
        "day",
        datetime(2025, 10, 25),
        datetime(2025, 10, 28),
        {at(2, 2025, 10, 26): 4, at(1, 2025, 10, 27): 1},
    ),
    "kolkata-hour": (
        "Asia/Kolkata",
        "hour",
        datetime(2025, 6, 1),
        datetime(2025, 6, 2),
        {at(5.5, 2025, 6, 1, 5): 1, at(5.5, 2025, 6, 1, 6): 1},
    ),
    "kolkata-day": ("Asia/Kolkata", "day", datetime(2025, 6, 1), datetime(2025, 6, 2), {at(5.5, 2025, 6, 1): 2}),
    "santiago-day-without-midnight": (
        "America/Santiago",
        "day",
        datetime(2024, 9, 1),
        datetime(2024, 9, 10),
        {at(-4, 2024, 9, 7): 1, at(-3, 2024, 9, 8, 1): 1},
    ),
    "beirut-day-without-midnight": (
        "Asia/Beirut",
        "day",
        datetime(2023, 3, 20),
        datetime(2023, 3, 30),
        {at(3, 2023, 3, 26, 1): 1},
    ),
    "beirut-month-after-the-change": (
        "Asia/Beirut",
        "month",
        datetime(2023, 3, 20),
        datetime(2023, 3, 30),
        {at(2, 2023, 3, 1): 1},
    ),
}


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, pg_database: Callable[[], str]) -> Iterator[Ask]:
    root: Path = tmp_path_factory.mktemp("buckets")
    source = SourceDB(f"sqlite:///{root / 'source.sqlite'}")
    source.insert(
        "error_events",
        *(
            {
                "event_id": f"e{i}",
                "occurred_at": moment,
                "resolved_at": moment + timedelta(hours=1) if i in RESOLVED else None,
                "updated_at": datetime(2025, 11, 1),
            }
            for i, moment in enumerate(EVENTS)
        ),
    )
    urls = {"duckdb": f"duckdb:///{root / 'warehouse.duckdb'}", "postgresql": pg_database()}
    for url in urls.values():
        run_etl(source.url, url, hash_key="k")
    source.dispose()
    urls["postgresql"] = urls["postgresql"].replace("postgresql+psycopg", "postgresql+asyncpg")
    registry = load_registry([CONFIGS / "custom_metric"])
    with asyncio.Runner() as runner:
        connected = {name: runner.run(MetricsEngine.connect(url, registry)) for name, url in urls.items()}

        def ask(backend: str, request: MetricRequest) -> QueryResult:
            return runner.run(connected[backend].query(request))

        yield ask
        for engine in connected.values():
            runner.run(engine.close())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES)
def test_buckets_are_distinct_instants_with_their_offset(case: str, backend: str, engines: Ask) -> None:
    zone, grain, start, end, expected = CASES[case]
    request = MetricRequest(
        ("error_count",), (DimensionRef.parse(f"time.{grain}"),), time_range=TimeRange(start, end), timezone=zone
    )
    buckets = {bucket: count for bucket, count in engines(backend, request).rows}
    assert buckets == expected
    assert sorted((b.isoformat(), b.utcoffset()) for b in buckets) == sorted(
        (b.isoformat(), b.utcoffset()) for b in expected
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_timestamp_maximum_is_a_datetime_end_to_end(backend: str, engines: Ask) -> None:
    berlin = MetricRequest(("last_resolution_at",), timezone="Europe/Berlin")
    result = engines(backend, berlin)
    [(latest,)] = result.rows
    assert (latest.isoformat(), latest.utcoffset()) == ("2025-10-26T02:30:00+01:00", timedelta(hours=1))
    assert result.to_arrow().schema.field("last_resolution_at").type == pa.timestamp("us", tz="Europe/Berlin")
    spring = MetricRequest(
        ("last_resolution_at", "error_count"),
        time_range=TimeRange(datetime(2025, 3, 1), datetime(2025, 4, 1)),
        timezone="Europe/Berlin",
    )
    assert engines(backend, spring).rows == [(at(2, 2025, 3, 30, 3, 59, 30), 3)]
    by_day = MetricRequest(
        ("last_resolution_at",),
        (DimensionRef.parse("time.year"),),
        having=(MetricCondition("last_resolution_at", FilterOp.GT, at(0, 2025, 6, 1)),),
    )
    assert engines(backend, by_day).rows == [(at(0, 2025, 1, 1), at(0, 2025, 10, 26, 1, 30))]
