"""The time-relative metrics of catalog.md on DuckDB and PostgreSQL, against plain Python over the raw rows.

The catalog dataset holds late events, type-2 tier changes, empty days and the end of summer time in
Berlin; the cases add Santiago (whose clocks skip midnight in September), a half-hour zone and ranges that
start in the middle of a window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from metrics.compiler import DimensionRef, MetricRequest, Predicate, TimeRange
from metrics.errors import TimeGrainRequired
from metrics.model import FilterOp
from metrics.registry import load_registry
from tests.metrics.catalog_data import BERLIN, Engines, Loaded
from tests.metrics.reference.windows import TIME_RELATIVE, compute

BACKENDS = ("duckdb", "postgresql")
REGISTRY = load_registry()
SANTIAGO, KOLKATA = "America/Santiago", "Asia/Kolkata"
ST_JOHNS, NEW_YORK = "America/St_Johns", "America/New_York"
"""St. John's keeps a half-hour offset through summer time: its clocks go back at 04:30 UTC on 2 November 2025."""
ST_JOHNS_FALL = (datetime(2025, 11, 1, 22), datetime(2025, 11, 2, 9))
BERLIN_FALL = (datetime(2025, 10, 25, 20), datetime(2025, 10, 26, 4))
"""The errors at the end of summer time in Berlin, read in other zones at the hour."""
OCTOBER = (datetime(2025, 10, 20), datetime(2025, 11, 12))


@dataclass(frozen=True)
class Case:
    metric: str
    grain: str
    timezone: str = "UTC"
    key: str | None = None
    time_range: tuple[datetime, datetime] = OCTOBER
    where: tuple[str, tuple[Any, ...]] | None = None

    def __str__(self) -> str:
        where = f"-where-{self.where[0]}" if self.where else ""
        return f"{self.metric}-{self.grain}-{self.timezone}-{self.key or 'total'}-{self.time_range[0]:%m%d%H}{where}"

    def request(self, **options: Any) -> MetricRequest:
        dimensions = (DimensionRef.parse(f"time.{self.grain}"), *([DimensionRef.parse(self.key)] if self.key else []))
        where = None
        if self.where is not None:
            where = Predicate(DimensionRef.parse(self.where[0]), FilterOp.IN, list(self.where[1]))
        return MetricRequest(
            metrics=(self.metric,),
            dimensions=dimensions,
            time_range=TimeRange(*(moment.replace(tzinfo=UTC) for moment in self.time_range)),
            timezone=self.timezone,
            where=where,
            **options,
        )


CASES = [
    Case("verification_count_7d", "day"),
    Case("verification_count_7d", "day", BERLIN, "tier.name", (datetime(2025, 10, 23, 13), datetime(2025, 11, 9))),
    Case("verification_count_7d", "hour", KOLKATA, None, (datetime(2025, 10, 25, 18), datetime(2025, 10, 27, 6))),
    Case("verification_count_7d", "month", BERLIN),
    Case("verification_success_rate_7d", "day", BERLIN),
    Case("verification_success_rate_7d", "week", SANTIAGO, None, (datetime(2025, 8, 25), datetime(2025, 11, 17))),
    Case("verification_count_mtd", "day", SANTIAGO, None, (datetime(2025, 9, 1), datetime(2025, 9, 12))),
    Case("verification_count_7d", "hour", SANTIAGO, None, (datetime(2025, 9, 6, 20), datetime(2025, 9, 7, 8))),
    Case("verification_count_mtd", "day", KOLKATA, None, (datetime(2025, 10, 25), datetime(2025, 11, 12))),
    Case("verification_count_mtd", "week", BERLIN, "tier.name"),
    Case("verification_count_mtd", "quarter", "UTC", None, (datetime(2024, 10, 1), datetime(2026, 1, 1))),
    Case("verification_count_mtd", "day", "UTC", "verification_status", where=("tier.name", ("Assist", "Observe"))),
    Case("error_count_7d", "day", BERLIN, "component.name", (datetime(2025, 10, 27), datetime(2025, 11, 4))),
    Case("error_count_7d", "week", KOLKATA, "tier.level"),
    Case("unique_users_28d", "day", BERLIN),
    Case("unique_users_28d", "week", "UTC", "agent.type", (datetime(2025, 11, 3), datetime(2025, 11, 24))),
    Case("error_count_previous", "day", BERLIN),
    Case("error_count_previous", "hour", BERLIN, None, (datetime(2025, 10, 25, 22), datetime(2025, 10, 26, 4))),
    Case("error_count_change", "week", BERLIN, "tier.name"),
    Case("error_count_change", "day", SANTIAGO, "error_severity", where=("error_type", ("timeout", "crash"))),
    Case("approval_count_year_ago", "day", "UTC", None, (datetime(2025, 12, 25), datetime(2026, 1, 3))),
    Case("approval_count_year_ago", "month", BERLIN, "tier.name", (datetime(2025, 10, 1), datetime(2026, 2, 1))),
    Case("approval_count_growth", "day", BERLIN, "approval_status"),
    Case("p95_trace_latency_ms_wow_change", "day", "UTC"),
    Case("p95_trace_latency_ms_week_ago", "week", KOLKATA, "trace_mode"),
    # hours in a half-hour zone with summer time, in a half-hour zone without, and at a change of whole hours
    Case("verification_count_7d", "hour", ST_JOHNS, "tier.name", ST_JOHNS_FALL),
    Case("verification_count_mtd", "hour", ST_JOHNS, None, (datetime(2025, 11, 1), datetime(2025, 11, 1, 6))),
    Case("error_count_previous", "hour", ST_JOHNS, None, BERLIN_FALL),
    Case("error_count_change", "hour", ST_JOHNS, "tier.name", BERLIN_FALL),
    Case("unique_users_28d", "hour", ST_JOHNS, None, ST_JOHNS_FALL),
    Case("unique_users_28d", "day", ST_JOHNS, "agent.type", (datetime(2025, 10, 28), datetime(2025, 11, 6))),
    Case("error_count_change", "hour", KOLKATA, "tier.name", (datetime(2025, 10, 25, 18), datetime(2025, 10, 26, 6))),
    Case("unique_users_28d", "hour", KOLKATA, "agent.type", (datetime(2025, 11, 1, 20), datetime(2025, 11, 2, 4))),
    Case("error_count_previous", "hour", NEW_YORK, "tier.name", BERLIN_FALL),
    Case("verification_count_7d", "hour", NEW_YORK, None, (datetime(2025, 11, 2, 3), datetime(2025, 11, 2, 9))),
]


def comparable(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo is not None else value


def answer(engines: Engines, backend: str, case: Case) -> dict[tuple[datetime, Any], Any]:
    records = engines.query(backend, case.request()).records()
    found = {
        (comparable(record[f"time.{case.grain}"]), record[case.key] if case.key else None): record[case.metric]
        for record in records
    }
    assert len(found) == len(records), "a bucket and group appears twice"
    return found


def expected(loaded: Loaded, case: Case) -> dict[tuple[datetime, Any], Any]:
    return compute(loaded.reference, case.metric, case.grain, case.timezone, case.key, case.time_range, case.where)


def assert_matches(actual: dict[Any, Any], wanted: dict[Any, Any]) -> None:
    assert sorted(map(repr, actual)) == sorted(map(repr, wanted)), "the buckets or groups differ"
    for group, value in wanted.items():
        got = actual[group]
        if value is None or isinstance(value, int):
            assert got == value and type(got) is type(value), f"{group!r}: {got!r} != {value!r}"
        else:
            assert isinstance(got, float) and got == pytest.approx(value, rel=1e-9), f"{group!r}: {got!r} != {value!r}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_the_reference(case: Case, backend: str, engines: Engines, loaded: Loaded) -> None:
    assert_matches(answer(engines, backend, case), expected(loaded, case))


def test_every_time_relative_metric_has_a_reference() -> None:
    assert {name for name in REGISTRY.metrics if REGISTRY.is_time_relative(name)} == set(TIME_RELATIVE)


@pytest.mark.parametrize(
    "dimensions", [(), ("time.day_of_week",), ("time.day", "time.week"), ("time.day", "time.hour_of_day")]
)
def test_needs_exactly_one_time_grain(dimensions: tuple[str, ...]) -> None:
    from metrics.compiler import compile_query

    request = MetricRequest(
        metrics=("verification_count", "error_count_7d"), dimensions=tuple(map(DimensionRef.parse, dimensions))
    )
    with pytest.raises(
        TimeGrainRequired, match="'error_count_7d' is time-relative.*select exactly one time grain"
    ) as caught:
        compile_query(request, REGISTRY)
    assert caught.value.code == "INVALID_DIMENSION"
