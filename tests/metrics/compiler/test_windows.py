"""Window aggregates without a database: the plan that decides how each is read, its SQL constructs per backend,
bound values and stable names."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy.dialects import postgresql

from metrics.compiler import DimensionRef, MetricRequest, Predicate, TimeRange, compile_query
from metrics.compiler.functions import bucket_series, calendar_interval
from metrics.model import FilterOp, TimeGrain
from metrics.registry import load_registry

REGISTRY = load_registry()
ts = sa.column("ts")
BY_DAY_AND_TIER = (DimensionRef.parse("time.day"), DimensionRef.parse("tier.name"))


def test_plan_says_how_each_window_is_read() -> None:
    request = MetricRequest(
        ("verification_success_rate_7d", "unique_users_28d", "p95_trace_latency_ms_wow_change"),
        (DimensionRef.parse("time.week"),),
        timezone="Europe/Berlin",
    )
    assert str(compile_query(request, REGISTRY).plan) == (
        "by [time.week] in Europe/Berlin\n"
        "  window verifications over the last 7 day(s) of each week, from partial sums per day: "
        "verification_success_count__trailing_7_day, verification_success_rate.denominator__trailing_7_day\n"
        "  window queries over the last 28 day(s) of each week, from distinct values per day: "
        "unique_users__trailing_28_day\n"
        "  window traces over the bucket of each week, from raw rows: p95_trace_latency_ms__bucket\n"
        "  window traces over 1 week(s) before of each week, from raw rows: p95_trace_latency_ms__shifted_1_week\n"
        "  full outer join on the dimensions\n"
        "  verification_success_rate_7d = (verifications__trailing_7_day.verification_success_count__trailing_7_day"
        " / verifications__trailing_7_day.verification_success_rate.denominator__trailing_7_day)\n"
        "  unique_users_28d = queries__trailing_28_day.unique_users__trailing_28_day\n"
        "  p95_trace_latency_ms_wow_change = (traces__bucket.p95_trace_latency_ms__bucket"
        " - traces__shifted_1_week.p95_trace_latency_ms__shifted_1_week)"
    )


def test_bucket_series_per_backend() -> None:
    series = bucket_series(ts, ts, calendar_interval(1, TimeGrain.DAY))
    assert str(series.compile(dialect=postgresql.dialect())) == "generate_series(ts, ts, INTERVAL '1 days')"
    assert str(series.compile(dialect=DuckDBDialect())) == "unnest(generate_series(ts, ts, INTERVAL '1 days'))"


def test_calendar_intervals() -> None:
    rendered = [
        str(calendar_interval(amount, unit).compile())
        for amount, unit in ((2, TimeGrain.WEEK), (1, TimeGrain.QUARTER), (1, TimeGrain.YEAR), (5, TimeGrain.HOUR))
    ]
    assert rendered == ["INTERVAL '14 days'", "INTERVAL '3 months'", "INTERVAL '1 years'", "INTERVAL '5 hours'"]


def test_range_zone_and_filter_values_are_bound_and_names_stable() -> None:
    request = MetricRequest(
        ("error_count_change", "verification_count_7d"),
        BY_DAY_AND_TIER,
        where=Predicate(DimensionRef.parse("tier.level"), FilterOp.IN, [1, 2]),
        time_range=TimeRange(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)),
        timezone="America/Santiago",
    )
    compiled = compile_query(request, REGISTRY).statement.compile(dialect=postgresql.dialect())
    text = str(compiled)
    assert "Santiago" not in text and "2025" not in text
    values = list(compiled.params.values())
    assert all(v in values for v in ("America/Santiago", datetime(2025, 3, 1), datetime(2025, 4, 1), [1, 2]))
    first = compile_query(request, REGISTRY).sql(postgresql.dialect())
    assert all(compile_query(request, REGISTRY).sql(postgresql.dialect()) == first for _ in range(3))
