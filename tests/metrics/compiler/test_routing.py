"""Each routing rule, without a database: which rollup a fact aggregate reads, or the first reason none can."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy.dialects import postgresql

from metrics.compiler import DimensionRef, MetricRequest, Predicate, TimeRange, compile_query
from metrics.compiler.plan import Scan
from metrics.model import Aggregation, FilterOp, Measure, Metric
from metrics.policy import Grant, Scope
from metrics.registry import load_registry

REGISTRY = load_registry()
BUILT = frozenset(REGISTRY.rollups)


def _scans(request: MetricRequest, built: frozenset[str] | None = BUILT, registry: object = REGISTRY) -> list[Scan]:
    plan = compile_query(request, registry, rollups=built).plan  # type: ignore[arg-type]
    return [aggregate.scan for aggregate in plan.aggregates]


def _request(*metrics: str, by: tuple[str, ...] = (), **fields: object) -> MetricRequest:
    return MetricRequest(metrics, tuple(map(DimensionRef.parse, by)), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (_request("p95_verification_duration_ms"), "p95_verification_duration_ms is not additive (percentile)"),
        (_request("unique_users"), "unique_users is not additive (count_distinct)"),
        (_request("trace_count", by=("practice",)), "dimension practice is not in any rollup of traces"),
        (
            _request("trace_count", where=Predicate(DimensionRef.parse("user"), FilterOp.EQ, "u1")),
            "dimension user is not in any rollup of traces",
        ),
        (
            _request("verification_count", by=("time.day",), timezone="Asia/Kolkata"),
            "time bucket day in Asia/Kolkata is not a union of hour buckets in UTC",
        ),
        (
            _request("error_count", by=("time.minute",)),
            "time bucket minute in UTC is not a union of hour buckets in UTC",
        ),
        (
            _request("error_count", by=("time.hour_of_day",), timezone="Australia/Lord_Howe"),
            "time.hour_of_day in Australia/Lord_Howe is not constant within hour buckets in UTC",
        ),
        (
            _request("error_count", time_range=TimeRange(datetime(2026, 1, 1, 10, 10), datetime(2026, 1, 1, 10, 50))),
            "the time range [2026-01-01 10:10:00, 2026-01-01 10:50:00) holds no whole bucket of a rollup of errors",
        ),
    ],
)
def test_the_first_reason_no_rollup_can_answer(request_: MetricRequest, reason: str) -> None:
    assert _scans(request_) == [Scan(reason=reason)]


def test_reasons_before_any_rule_declared_built_and_stored() -> None:
    assert _scans(_request("error_count"), None) == [Scan(reason="rollups are off for this request")]
    assert _scans(replace(_request("error_count"), rollups=False)) == [Scan(reason="rollups are off for this request")]
    assert _scans(_request("error_count"), frozenset({"verifications_by_day"})) == [
        Scan(reason="no rollup of errors is built and current in the warehouse; the ETL builds them")
    ]
    without = load_registry()
    without.rollups = {name: r for name, r in without.rollups.items() if r.fact != "missions"}
    assert _scans(_request("mission_count"), BUILT, without) == [Scan(reason="no rollup of missions is declared")]
    longest = Metric("longest_run_ms", "Longest", measure=Measure("verifications", Aggregation.MAX, "duration_ms"))
    assert _scans(replace(_request("longest_run_ms"), derived=(longest,))) == [
        Scan(reason="longest_run_ms is not stored in any rollup of verifications")
    ]


def test_the_smallest_rollup_that_can_answer_is_read() -> None:
    assert [s.rollup for s in _scans(_request("verification_count", by=("tier.name", "time.week")))] == [
        "verifications_by_day"
    ]
    berlin = _request("verification_success_rate", by=("agent.type", "time.month"), timezone="Europe/Berlin")
    assert [s.rollup for s in _scans(berlin)] == ["verifications_by_hour"]
    assert [s.rollup for s in _scans(_request("verification_count", by=("actor.team",)))] == [
        "verifications_by_actor_day"
    ]
    drill = _request("errors_per_verification", by=("component.kernel",))
    assert [s.rollup for s in _scans(drill)] == ["errors_by_day", "verifications_by_component_day"]


def test_ragged_ends_are_read_from_the_facts_and_whole_buckets_from_the_rollup() -> None:
    off_the_hour = TimeRange(datetime(2026, 1, 1, 10, 30), datetime(2026, 1, 3))
    assert _scans(_request("error_count", time_range=off_the_hour)) == [
        Scan(
            "errors_by_hour",
            "",
            datetime(2026, 1, 1, 11),
            datetime(2026, 1, 3),
            ((off_the_hour.start, datetime(2026, 1, 1, 11)),),
        )
    ]
    on_the_hour = TimeRange(datetime(2026, 1, 1, 10), datetime(2026, 1, 3))
    [scan] = _scans(_request("verification_count", by=("tier.name",), time_range=on_the_hour))
    assert scan.rollup == "verifications_by_hour" and not scan.ragged  # the daily rollup would need ragged ends
    [zoned] = _scans(_request("error_count", by=("time.day",), timezone="America/New_York"))
    assert (zoned.low, zoned.high) == (datetime(1970, 1, 1), datetime(2100, 1, 1))
    assert zoned.ragged == ((None, datetime(1970, 1, 1)), (datetime(2100, 1, 1), None))
    zoned_sql = compile_query(
        _request("error_count", by=("time.day",), timezone="America/New_York"), REGISTRY, rollups=BUILT
    )
    # rows without an event time are read where the request did not bound the time, as the base query reads them
    assert (
        "WHERE fact_errors.occurred_at < '1970-01-01 00:00:00' OR fact_errors.occurred_at >= '2100-01-01 00:00:00' "
        "OR fact_errors.occurred_at IS NULL GROUP BY 1" in " ".join(zoned_sql.sql(postgresql.dialect()).split())
    )


def test_explain_shows_each_scan_and_the_sql_reads_the_rollup_with_member_versions() -> None:
    request = _request(
        "verification_success_rate",
        "avg_confidence",
        "p95_verification_duration_ms",
        by=("tier.name",),
        time_range=TimeRange(datetime(2026, 1, 1, 10, 30)),
    )
    compiled = compile_query(replace(request, metrics=request.metrics[:2]), REGISTRY, rollups=BUILT)
    assert str(compiled.plan).splitlines()[2:4] == [
        "  aggregate verifications: verification_success_rate.denominator, verification_success_count, avg_confidence",
        "    scan rollup verifications_by_day for [2026-01-02 00:00:00, None)"
        " + the fact table for [2026-01-01 10:30:00, 2026-01-02 00:00:00)",
    ]
    sql = " ".join(compiled.sql(postgresql.dialect()).split())
    assert (
        "FROM rollup_verifications_by_day LEFT OUTER JOIN dim_tier AS tier ON rollup_verifications_by_day.tier_key = "
        "tier.tier_key AND rollup_verifications_by_day.tier_key__valid_from = tier.valid_from" in sql
    )
    assert "CAST(CAST(sum(verifications_parts.avg_confidence__sum) AS TEXT) AS DOUBLE PRECISION)" in sql
    assert "UNION ALL SELECT tier.tier_name AS tier__name, count(*) FILTER" in sql
    with_p95 = str(compile_query(request, REGISTRY, rollups=BUILT).plan)
    assert "    scan the fact table (p95_verification_duration_ms is not additive (percentile))" in with_p95


def test_time_relative_metrics_read_the_facts_through_their_windows() -> None:
    plan = compile_query(_request("verification_count_7d", by=("time.day",)), REGISTRY, rollups=BUILT).plan
    assert plan.aggregates == () and len(plan.windows) == 1


def test_k_anonymity_reads_the_facts_for_its_distinct_users() -> None:
    grant = Grant("everything", frozenset(REGISTRY.metrics), frozenset(REGISTRY.dimensions), None)
    research = replace(_request("query_count", by=("agent.type",)), scope=Scope((grant,), k_anonymity=5))
    assert _scans(research) == [Scan(reason="_k_users_queries is not additive (count_distinct)")]
    team = replace(research, scope=Scope((grant,)))
    assert [scan.rollup for scan in _scans(team)] == ["queries_by_hour"]
