"""The rollup table contract without a database: columns, fingerprints, and the SQL of a refresh."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.dialects import postgresql

from metrics.compiler.rollup_tables import refresh_statements, rollup_fingerprint, rollup_table
from metrics.model import Condition, FilterOp, TimeGrain
from metrics.registry import load_registry

REGISTRY = load_registry()
APPROVALS = replace(  # every kind of kept dimension: type-2 members, a member reached by its own key column, values
    REGISTRY.rollups["approvals_by_day"], dimensions=("tier", "agent", "actor", "component", "approval_status")
)


def _sql(statement: object) -> str:
    compiled = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})  # type: ignore[attr-defined]
    return " ".join(str(compiled).split())


def test_the_table_keeps_the_bucket_member_keys_versions_values_and_parts_in_a_fixed_order() -> None:
    table = rollup_table(APPROVALS, REGISTRY)
    assert table.name == "rollup_approvals_by_day"
    assert [(c.name, str(c.type)) for c in table.columns] == [
        ("bucket", "DATETIME"),
        ("tier_key", "INTEGER"),
        ("tier_key__valid_from", "DATETIME"),
        ("agent_key", "INTEGER"),
        ("agent_key__valid_from", "DATETIME"),
        ("approver_key", "INTEGER"),
        ("component_key", "INTEGER"),
        ("status", "TEXT"),
        ("approval_count__count", "BIGINT"),
        ("approval_rate__denominator__count", "BIGINT"),
        ("approval_rate__numerator__count", "BIGINT"),
        ("avg_approval_latency_s__sum", "NUMERIC(38, 9)"),
        ("avg_approval_latency_s__count", "BIGINT"),
        ("avg_risk_score__sum", "NUMERIC(38, 9)"),
        ("avg_risk_score__count", "BIGINT"),
        ("pending_approval_count__count", "BIGINT"),
        ("sla_compliance_rate__denominator__count", "BIGINT"),
        ("sla_compliance_rate__numerator__count", "BIGINT"),
    ]
    assert rollup_table(APPROVALS, REGISTRY).metadata is not table.metadata


def test_the_fingerprint_changes_with_what_the_table_holds_and_only_then() -> None:
    fingerprint = rollup_fingerprint(APPROVALS, REGISTRY)
    assert rollup_fingerprint(replace(APPROVALS, file="elsewhere.yaml", line=9), REGISTRY) == fingerprint
    assert rollup_fingerprint(replace(APPROVALS, grain=TimeGrain.HOUR), REGISTRY) != fingerprint
    assert rollup_fingerprint(replace(APPROVALS, dimensions=("agent",)), REGISTRY) != fingerprint
    changed = load_registry()
    metric = changed.metrics["approval_count"]
    assert metric.measure is not None
    narrower = replace(metric.measure, filter=(Condition("status", FilterOp.EQ, "approved"),))
    changed.metrics["approval_count"] = replace(metric, measure=narrower)
    assert rollup_fingerprint(APPROVALS, changed) != fingerprint


def test_a_refresh_replaces_whole_days_of_the_range() -> None:
    statements = refresh_statements(
        APPROVALS, REGISTRY, start=datetime(2026, 1, 1, 10, 30, tzinfo=UTC), end=datetime(2026, 1, 2, 7, 0, 1)
    )
    assert statements is not None
    delete, insert = map(_sql, statements)
    assert delete == (
        "DELETE FROM rollup_approvals_by_day WHERE rollup_approvals_by_day.bucket >= '2026-01-01 00:00:00' "
        "AND rollup_approvals_by_day.bucket < '2026-01-03 00:00:00'"
    )
    assert insert.startswith("INSERT INTO rollup_approvals_by_day (bucket, tier_key, tier_key__valid_from, ")
    assert "SELECT date_trunc('day', fact_approvals.requested_at) AS bucket" in insert
    assert (
        "LEFT OUTER JOIN dim_tier AS tier ON tier.tier_key = fact_approvals.tier_key "
        "AND fact_approvals.requested_at >= tier.valid_from AND fact_approvals.requested_at < tier.valid_to" in insert
    )
    assert "count(*) FILTER (WHERE fact_approvals.status = 'pending') AS pending_approval_count__count" in insert
    assert "sum(CAST(CAST(EXTRACT(EPOCH FROM (fact_approvals.resolved_at - fact_approvals.requested_at))" in insert
    assert insert.endswith(
        "WHERE fact_approvals.requested_at >= '2026-01-01 00:00:00' "
        "AND fact_approvals.requested_at < '2026-01-03 00:00:00' GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
    )


def test_without_bounds_a_refresh_is_a_full_rebuild() -> None:
    statements = refresh_statements(APPROVALS, REGISTRY)
    assert statements is not None
    delete, insert = map(_sql, statements)
    assert delete == "DELETE FROM rollup_approvals_by_day"
    assert " WHERE fact_approvals" not in insert


def test_a_member_refresh_names_the_fact_column_or_the_dimension_key_and_skips_rollups_without_it() -> None:
    by_fact_column = refresh_statements(APPROVALS, REGISTRY, member=("approver_key", 7))
    by_dimension_key = refresh_statements(APPROVALS, REGISTRY, member=("actor_key", 7))
    assert by_fact_column is not None and by_dimension_key is not None
    assert list(map(_sql, by_fact_column)) == list(map(_sql, by_dimension_key))
    assert (
        _sql(by_fact_column[0]) == "DELETE FROM rollup_approvals_by_day WHERE rollup_approvals_by_day.approver_key = 7"
    )
    assert "WHERE fact_approvals.approver_key = 7 GROUP BY" in _sql(by_fact_column[1])
    assert refresh_statements(REGISTRY.rollups["verifications_by_day"], REGISTRY, member=("actor_key", 7)) is None
