"""The demo platform's cast: tiers, agents, actors, components, and the ids nobody registered."""

from __future__ import annotations

TIERS = [
    ("tier_0", "Observe", 0, 0.2),
    ("tier_1", "Assist", 1, 0.45),
    ("tier_2", "Operational", 2, 0.7),
    ("tier_3", "Autonomous", 3, 0.9),
]
TIER_WEIGHTS = [0.15, 0.35, 0.35, 0.15]

AGENTS = [
    ("atlas-data", "data", ["sql", "dbt"], 30, 0.012),
    ("hermes-support", "support", ["tickets", "kb"], 20, 0.004),
    ("forge-engineer", "engineer", ["git", "ci", "k8s"], 120, 0.03),
    ("muse-marketing", "marketing", ["copy", "seo"], 60, 0.008),
    ("oracle-ai", "ai", ["rag", "eval"], 45, 0.05),
    ("sentry-qa", "qa", ["tests", "fuzz"], 90, 0.01),
    ("pilot-ops", "ops", ["deploy", "pager"], 15, 0.02),
    ("ledger-data", "data", ["sql"], 40, 0.009),
    ("scribe-support", "support", ["email"], 25, 0.003),
    ("anvil-engineer", "engineer", ["git", "terraform"], 150, 0.035),
    ("lens-ai", "ai", ["vision"], 60, 0.06),
    ("watch-ops", "ops", ["metrics", "pager"], 10, 0.015),
]

TEAMS = ["platform", "risk", "support", "growth", "data", None]
ACTORS = (
    [(f"human-{i:02d}", "human", f"Person {i:02d}", TEAMS[i % len(TEAMS)]) for i in range(24)]
    + [(f"system-{name}", "system", name.title(), "platform") for name in ("scheduler", "webhook", "ci", "monitor")]
    + [(name, "agent", name, None) for name, *_ in AGENTS[:6]]
)

KERNELS = ["core", "ingress", "intelligence", "learning", "memory", "orchestration", "resilience", "mlt", "mldl", "communications"]
COMPONENTS = [(f"{kernel}-{part}", kernel) for kernel in KERNELS for part in ("api", "worker", "store")[: 2 + (kernel in ("core", "ingress", "intelligence", "orchestration", "memory"))]]

ACTION_TYPES = ["deploy", "rollback", "scale", "query", "notify", "refund", "migrate", "retrain"]
ERROR_TYPES = ["timeout", "validation", "permission", "rate_limit", "dependency", "oom"]
SEVERITIES = [("low", 0.5), ("medium", 0.3), ("high", 0.15), ("critical", 0.05)]
MISSION_TYPES = ["incident_response", "release", "data_backfill", "customer_escalation", "model_refresh"]
PRACTICES = [
    "least-privilege", "dry-run", "two-person-review", "canary", "rollback-plan",
    "rate-limit", "pii-redaction", "idempotency", "observability", "blast-radius",
]
FACETS = ["planning", "retrieval", "safety", "tooling", None]
MODES = ["fast", "deliberate", None]

UNKNOWN = {
    "tier": "tier_9",
    "agent": "ghost-agent",
    "actor": "ghost-actor",
    "component": "ghost-component",
    "mission": "ghost-mission",
}
"""Ids that events reference but no reference table holds (until a later step registers some)."""
