"""The agent facts' metrics: queries, feedback, reasoning traces and their practice steps."""

from __future__ import annotations

from tests.metrics.reference.aggregates import (
    FactMetric,
    column,
    count,
    distinct,
    equals,
    is_true,
    mean,
    not_null,
    percentile,
    ratio,
    total,
)
from tests.metrics.reference.source import Row


def _overall_score(row: Row) -> float:
    return sum(row[name] or 0 for name in ("clarity_score", "accuracy_score", "tone_score")) / 3


_trace_latency = column("latency_ms")

AGENTS: dict[str, FactMetric] = {
    "query_count": FactMetric("queries", count()),
    "avg_query_latency_ms": FactMetric("queries", mean(column("latency_ms"))),
    "p95_query_latency_ms": FactMetric("queries", percentile(0.95, column("latency_ms"))),
    "query_approval_rate": FactMetric("queries", ratio(is_true("approved"), not_null("approved"))),
    "edit_rate": FactMetric("queries", ratio(is_true("human_edited"), lambda row: True)),
    "query_error_rate": FactMetric("queries", ratio(is_true("error_occurred"), lambda row: True)),
    "unique_users": FactMetric("queries", distinct(column("user_id"))),
    "unique_conversations": FactMetric("queries", distinct(column("conversation_id"))),
    "total_cost_usd": FactMetric("queries", total(column("cost_usd"))),
    "feedback_count": FactMetric("feedback", count()),
    "avg_overall_score": FactMetric("feedback", mean(_overall_score)),
    "unsafe_rate": FactMetric("feedback", ratio(lambda row: row["safe_to_send"] is False, not_null("safe_to_send"))),
    "trace_count": FactMetric("traces", count()),
    "unique_trace_users": FactMetric("traces", distinct(column("user_id"))),
    "avg_trace_confidence": FactMetric("traces", mean(column("confidence"))),
    "avg_trace_latency_ms": FactMetric("traces", mean(_trace_latency)),
    "p95_trace_latency_ms": FactMetric("traces", percentile(0.95, _trace_latency)),
    "critical_event_count": FactMetric("traces", count(equals("safety_level", "critical"))),
    "elevated_event_count": FactMetric("traces", count(equals("safety_level", "elevated"))),
    "practice_recommendation_count": FactMetric("practice_steps", count()),
}
