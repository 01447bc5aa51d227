"""The SQL text where it is the point: golden files per backend, bound values, stable output."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql.asyncpg import dialect as AsyncpgDialect

from metrics.compiler import (
    And,
    DimensionRef,
    MetricCondition,
    MetricRequest,
    Or,
    OrderBy,
    Predicate,
    TimeRange,
    compile_query,
)
from metrics.model import FilterOp
from metrics.registry import load_registry

GOLDEN = Path(__file__).parent / "golden"
REGISTRY = load_registry()
DIALECTS: dict[str, sa.Dialect] = {"postgresql": AsyncpgDialect(), "duckdb": DuckDBDialect(paramstyle="qmark")}

CASES: dict[str, MetricRequest] = {
    "dashboard_by_tier_and_day": MetricRequest(
        metrics=("verification_count", "verification_success_rate", "p95_verification_duration_ms"),
        dimensions=(DimensionRef.parse("time.day"), DimensionRef.parse("tier.name")),
        where=And(
            (
                Predicate(DimensionRef.parse("tier.name"), FilterOp.IN, ("Copilot", "Operational", "Autonomous")),
                Predicate(DimensionRef.parse("component.kernel"), FilterOp.EQ, "ingress"),
            )
        ),
        time_range=TimeRange(datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 11, 8, tzinfo=UTC)),
        having=(MetricCondition("verification_count", FilterOp.GT, 1),),
        order_by=(OrderBy("verification_success_rate", descending=True),),
        limit=100,
        timezone="Europe/Berlin",
        total_count=True,
    ),
    "drill_across_errors_per_verification": MetricRequest(
        metrics=("errors_per_verification", "error_count", "verification_count"),
        dimensions=(DimensionRef.parse("agent.type"),),
    ),
    "practice_bridge_sliced_and_filtered": MetricRequest(
        metrics=("trace_count", "practice_recommendation_count"),
        dimensions=(DimensionRef.parse("practice"),),
        where=Or(
            (
                Predicate(DimensionRef.parse("safety_level"), FilterOp.EQ, "critical"),
                Predicate(DimensionRef.parse("practice"), FilterOp.LIKE, "least%"),
            )
        ),
    ),
    "practice_filter_without_slicing": MetricRequest(
        metrics=("trace_count", "avg_trace_latency_ms"),
        where=Predicate(DimensionRef.parse("practice"), FilterOp.NOT_IN, ("dry-run",)),
    ),
}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", CASES)
def test_golden_sql(case: str, dialect: str) -> None:
    sql = compile_query(CASES[case], REGISTRY).sql(DIALECTS[dialect]) + "\n"
    golden = GOLDEN / f"{case}.{dialect}.sql"
    if os.environ.get("GRACE_UPDATE_GOLDEN"):
        golden.write_text(sql)
    assert sql == golden.read_text()


def test_plan_prints_as_text() -> None:
    plan = compile_query(CASES["drill_across_errors_per_verification"], REGISTRY).plan
    assert str(plan) == (
        "by [agent.type] in UTC\n"
        "  aggregate errors: error_count\n"
        "    scan the fact table (no rollup of errors is built and current in the warehouse; the ETL builds them)\n"
        "  aggregate verifications: verification_count\n"
        "    scan the fact table (no rollup of verifications is built and current in the warehouse; "
        "the ETL builds them)\n"
        "  full outer join on the dimensions\n"
        "  errors_per_verification = (errors.error_count / verifications.verification_count)\n"
        "  error_count = errors.error_count\n"
        "  verification_count = verifications.verification_count"
    )


def test_filter_values_are_bound_never_inlined() -> None:
    request = MetricRequest(
        metrics=("error_count",),
        where=Predicate(DimensionRef.parse("error_type"), FilterOp.EQ, "x'; DROP TABLE fact_errors; --"),
        timezone="Asia/Kolkata",
        dimensions=(DimensionRef.parse("time.hour"),),
    )
    compiled = compile_query(request, REGISTRY).statement.compile(dialect=postgresql.dialect())
    assert "DROP TABLE" not in str(compiled)
    assert "Asia/Kolkata" not in str(compiled)
    assert set(compiled.params.values()) >= {"x'; DROP TABLE fact_errors; --", "Asia/Kolkata"}


def test_compiled_sql_is_stable_across_runs() -> None:
    for request in CASES.values():
        first = compile_query(request, REGISTRY).sql(postgresql.dialect())
        assert all(compile_query(request, REGISTRY).sql(postgresql.dialect()) == first for _ in range(3))


def test_unneeded_dimensions_and_bridges_are_not_joined() -> None:
    sql = compile_query(MetricRequest(("trace_count", "verification_count")), REGISTRY).sql(postgresql.dialect())
    assert "JOIN dim_" not in sql and "bridge_trace_practices" not in sql


def test_naive_datetimes_mean_utc_in_time_ranges_filters_and_having_alike() -> None:
    """Whatever the request's time zone, 2025-11-01 10:00 (naive), 10:00+00:00 and 11:00+01:00 are one instant."""
    berlin = timezone(timedelta(hours=1))
    spellings = [
        datetime(2025, 11, 1, 10),
        datetime(2025, 11, 1, 10, tzinfo=UTC),
        datetime(2025, 11, 1, 11, tzinfo=berlin),
    ]
    params = []
    for moment in spellings:
        request = MetricRequest(
            ("error_count",),
            (DimensionRef.parse("time.hour"),),
            where=Predicate(DimensionRef.parse("time.hour"), FilterOp.GTE, moment),
            time_range=TimeRange(moment, None),
            timezone="Asia/Kolkata",
        )
        compiled = compile_query(request, REGISTRY).statement.compile(dialect=postgresql.dialect())
        params.append({name: value for name, value in compiled.params.items() if isinstance(value, datetime)})
    assert params[0] == params[1] == params[2]
    assert set(params[0].values()) == {datetime(2025, 11, 1, 10)}
