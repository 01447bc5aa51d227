"""The operational facts' metrics: verifications, errors, approvals, missions, and their cross-fact ratio."""

from __future__ import annotations

from tests.metrics.reference.aggregates import (
    CrossMetric,
    FactMetric,
    column,
    count,
    equals,
    is_true,
    mean,
    not_null,
    percentile,
    ratio,
    seconds,
)
from tests.metrics.reference.source import Row


def actions_per_mission(rows: list[Row]) -> float | None:
    missions = [row["mission_id"] for row in rows if row["mission_id"] is not None]
    return len(missions) / len(set(missions)) if missions else None


def _approval_latency(row: Row) -> float | None:
    return seconds(row["requested_at"], row["resolved_at"]) if row["status"] in ("approved", "rejected") else None


_completed = equals("status", "verified", "failed")
_decided = equals("status", "approved", "rejected")
_duration_ms = column("duration_ms")

OPERATIONS: dict[str, FactMetric | CrossMetric] = {
    "verification_count": FactMetric("verifications", count()),
    "verification_success_count": FactMetric("verifications", count(equals("status", "verified"))),
    "verification_success_rate": FactMetric("verifications", ratio(equals("status", "verified"), _completed)),
    "rollback_rate": FactMetric("verifications", ratio(is_true("rolled_back"), _completed)),
    "avg_confidence": FactMetric("verifications", mean(column("confidence"))),
    "avg_verification_duration_ms": FactMetric("verifications", mean(_duration_ms)),
    "p50_verification_duration_ms": FactMetric("verifications", percentile(0.5, _duration_ms)),
    "p95_verification_duration_ms": FactMetric("verifications", percentile(0.95, _duration_ms)),
    "p99_verification_duration_ms": FactMetric("verifications", percentile(0.99, _duration_ms)),
    "actions_per_mission": FactMetric("verifications", actions_per_mission),
    "error_count": FactMetric("errors", count()),
    "auto_resolution_rate": FactMetric("errors", ratio(is_true("auto_resolved"), lambda row: True)),
    "resolution_rate": FactMetric("errors", ratio(not_null("resolved_at"), lambda row: True)),
    "mean_time_to_resolve_s": FactMetric("errors", mean(lambda row: seconds(row["occurred_at"], row["resolved_at"]))),
    "approval_count": FactMetric("approvals", count()),
    "pending_approval_count": FactMetric("approvals", count(equals("status", "pending"))),
    "approval_rate": FactMetric("approvals", ratio(equals("status", "approved"), _decided)),
    "avg_approval_latency_s": FactMetric("approvals", mean(_approval_latency)),
    "p95_approval_latency_s": FactMetric("approvals", percentile(0.95, _approval_latency)),
    "sla_compliance_rate": FactMetric(
        "approvals",
        ratio(lambda row: _approval_latency(row) <= row["sla_seconds"], lambda row: _approval_latency(row) is not None),
    ),
    "avg_risk_score": FactMetric("approvals", mean(column("risk_score"))),
    "mission_count": FactMetric("missions", count()),
    "mission_success_rate": FactMetric(
        "missions", ratio(equals("status", "completed"), equals("status", "completed", "failed"))
    ),
    "avg_mission_duration_s": FactMetric("missions", mean(lambda row: seconds(row["started_at"], row["completed_at"]))),
    "errors_per_verification": CrossMetric("error_count", "verification_count"),
}
