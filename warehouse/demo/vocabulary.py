"""Words events are made of, each with how common it is.

Uneven weights give every categorical dimension a realistic head and tail;
a few members of each list are rare on purpose so small slices exist.
"""

from __future__ import annotations

Weighted = tuple[tuple[str, float], ...]

ACTION_TYPES: Weighted = (
    ("run_query", 3.0),
    ("send_message", 2.2),
    ("create_ticket", 1.6),
    ("update_config", 1.2),
    ("write_memory", 1.4),
    ("deploy_release", 0.6),
    ("scale_service", 0.5),
    ("train_model", 0.3),
    ("publish_campaign", 0.4),
    ("issue_refund", 0.2),
)

MISSION_TYPES: Weighted = (
    ("incident_response", 1.2),
    ("customer_escalation", 1.5),
    ("data_pipeline_repair", 0.9),
    ("release_rollout", 1.0),
    ("campaign_launch", 0.6),
    ("model_retraining", 0.4),
    ("cost_optimization", 0.5),
    ("security_review", 0.3),
)

MISSION_OUTCOMES: Weighted = (("completed", 0.8), ("failed", 0.12), ("cancelled", 0.08))

ERROR_TYPES: Weighted = (
    ("timeout", 3.0),
    ("dependency_unavailable", 1.8),
    ("rate_limited", 1.5),
    ("validation_error", 2.2),
    ("schema_mismatch", 0.7),
    ("permission_denied", 0.6),
    ("out_of_memory", 0.3),
    ("hallucination_detected", 0.5),
)

SEVERITIES: Weighted = (("low", 0.45), ("medium", 0.35), ("high", 0.15), ("critical", 0.05))

APPROVAL_OUTCOMES: Weighted = (("approved", 0.8), ("rejected", 0.14), ("expired", 0.06))

FACETS: Weighted = (
    ("planning", 1.5),
    ("coding", 1.2),
    ("support", 1.4),
    ("analysis", 1.0),
    ("marketing", 0.5),
    ("operations", 0.8),
)
MODES: Weighted = (("fast", 2.0), ("deliberate", 1.2), ("reflective", 0.4))
SAFETY_LEVELS: Weighted = (("normal", 0.9), ("elevated", 0.08), ("critical", 0.02))

PRACTICES: Weighted = (
    ("least privilege", 2.0),
    ("dry run first", 1.7),
    ("two-person review", 1.3),
    ("canary release", 1.0),
    ("rollback plan", 1.2),
    ("rate limiting", 0.8),
    ("pii redaction", 0.9),
    ("idempotent retries", 0.7),
    ("observability first", 0.5),
    ("blast radius check", 0.4),
)
"""The practices a trace's plan can recommend: what the ``practice`` dimension slices by."""

PLAN_STEPS: Weighted = (
    ("lookup", 2.0),
    ("reason", 1.5),
    ("tool_call", 1.2),
    ("verify", 0.6),
)
STEP_DETAILS: dict[str, tuple[str, ...]] = {
    "lookup": ("customer history", "runbook", "recent incidents", "policy document", "similar tickets"),
    "reason": ("compare options", "estimate impact", "check constraints"),
    "tool_call": ("sql.run", "ticket.create", "deploy.plan", "search.web"),
    "verify": ("diff review", "test results", "metric check"),
}
RULES: tuple[str, ...] = ("R-001 pii", "R-014 spend limit", "R-020 prod change", "R-031 tone", "R-042 escalate")
RATIONALES: tuple[str, ...] = (
    "user asked for a change in production",
    "similar request succeeded last week",
    "risk above tier limit",
    "missing context, looked it up",
    "policy requires review",
)

LABELS: Weighted = (
    ("helpful", 3.0),
    ("correct", 2.5),
    ("incomplete", 1.0),
    ("too_long", 0.8),
    ("needs_citation", 0.7),
    ("off_topic", 0.4),
    ("tone_issue", 0.5),
    ("hallucination", 0.4),
    ("pii_risk", 0.2),
)

SCORES: tuple[float, ...] = (0.04, 0.08, 0.2, 0.38, 0.3)
"""Weights of scores 1..5: annotators are mostly satisfied."""
