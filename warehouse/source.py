"""The operational source contract (``sources.md``) as SQLAlchemy tables.

The ETL reads exactly these columns, the demo generator writes them, and tests
build sources from them. Timestamps are declared as ``DateTime(timezone=True)``
so PostgreSQL gets ``timestamptz``; SQLite stores ISO-8601 text either way.
The ``doc`` of tables and columns is what a person filling a source needs to
know; ``docs/sources.md`` is generated from it (``warehouse/source_reference.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

source_metadata = sa.MetaData()
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def _timestamp(name: str, *, nullable: bool = False, doc: str | None = None) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, doc=doc)


def _updated_at() -> sa.Column:
    return sa.Column(
        "updated_at",
        sa.DateTime(timezone=True),
        nullable=False,
        index=True,
        doc="set on every insert and every update of the row: the ETL's watermark",
    )


autonomy_tiers = sa.Table(
    "autonomy_tiers",
    source_metadata,
    sa.Column("tier_id", sa.Text, primary_key=True, doc="e.g. `tier_0` .. `tier_3`"),
    sa.Column(
        "tier_name", sa.Text, nullable=False, doc="e.g. Observe, Assist, Operational, Autonomous; may be renamed"
    ),
    sa.Column("tier_level", sa.Integer, nullable=False, doc="0..3"),
    sa.Column("max_risk_score", sa.Double, nullable=False, doc="0..1; may change"),
    _updated_at(),
    info={"doc": "Autonomy tiers (dimension `tier`). Type 2: a fact takes the values valid at its event time."},
)

agents = sa.Table(
    "agents",
    source_metadata,
    sa.Column("agent_name", sa.Text, primary_key=True),
    sa.Column(
        "agent_type", sa.Text, nullable=False, doc="one of data, engineer, support, marketing, ai, qa, ops; may change"
    ),
    sa.Column("capabilities", JSON, nullable=False, doc="array of strings; may change"),
    sa.Column("sla_target_seconds", sa.Integer, nullable=False),
    sa.Column("cost_per_query_usd", sa.Double, nullable=False),
    _updated_at(),
    info={"doc": "Agents (dimension `agent`). Type 2: a fact takes the values valid at its event time."},
)

actors = sa.Table(
    "actors",
    source_metadata,
    sa.Column("actor_id", sa.Text, primary_key=True, doc="humans, systems and agents that act or approve"),
    sa.Column("actor_type", sa.Text, nullable=False, doc="one of human, system, agent"),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("team", sa.Text, nullable=True),
    _updated_at(),
    info={"doc": "Actors (dimension `actor`). Type 1: current values apply to all history."},
)

components = sa.Table(
    "components",
    source_metadata,
    sa.Column("component_name", sa.Text, primary_key=True),
    sa.Column(
        "kernel",
        sa.Text,
        nullable=False,
        doc="core, ingress, intelligence, learning, memory, orchestration, resilience, mlt, mldl, communications",
    ),
    _updated_at(),
    info={"doc": "Platform components (dimension `component`). Type 1."},
)

missions = sa.Table(
    "missions",
    source_metadata,
    sa.Column("mission_id", sa.Text, primary_key=True),
    sa.Column("mission_type", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, doc="running, completed, failed, cancelled"),
    _timestamp("started_at", doc="event time"),
    _timestamp("completed_at", nullable=True),
    _updated_at(),
    info={"doc": "Multi-action workflows (fact `missions`, dimension `mission`)."},
)

action_contracts = sa.Table(
    "action_contracts",
    source_metadata,
    sa.Column("contract_id", sa.Text, primary_key=True),
    sa.Column("mission_id", sa.Text, nullable=True),
    sa.Column("action_type", sa.Text, nullable=False),
    sa.Column("component_name", sa.Text, nullable=False),
    sa.Column("tier_id", sa.Text, nullable=False),
    sa.Column("actor_id", sa.Text, nullable=False, doc="who triggered it"),
    sa.Column("agent_name", sa.Text, nullable=True, doc="executing agent, if any"),
    sa.Column("status", sa.Text, nullable=False, doc="pending, verified, failed"),
    sa.Column("rolled_back", sa.Boolean, nullable=False),
    sa.Column("confidence", sa.Double, nullable=True, doc="0..1"),
    sa.Column("duration_ms", sa.Integer, nullable=True),
    _timestamp("created_at", doc="event time"),
    _timestamp("completed_at", nullable=True),
    _updated_at(),
    info={"doc": "One verified action execution each (fact `verifications`)."},
)

error_events = sa.Table(
    "error_events",
    source_metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    _timestamp("occurred_at", doc="event time"),
    sa.Column("component_name", sa.Text, nullable=False),
    sa.Column("tier_id", sa.Text, nullable=True),
    sa.Column("agent_name", sa.Text, nullable=True),
    sa.Column("error_type", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False, doc="low, medium, high, critical"),
    sa.Column("auto_resolved", sa.Boolean, nullable=False),
    _timestamp("resolved_at", nullable=True),
    _updated_at(),
    info={"doc": "Errors (fact `errors`)."},
)

approval_requests = sa.Table(
    "approval_requests",
    source_metadata,
    sa.Column("approval_id", sa.Text, primary_key=True),
    _timestamp("requested_at", doc="event time"),
    _timestamp("resolved_at", nullable=True),
    sa.Column("status", sa.Text, nullable=False, doc="pending, approved, rejected, expired"),
    sa.Column("agent_name", sa.Text, nullable=True, doc="requesting agent"),
    sa.Column("approver_id", sa.Text, nullable=True, doc="the actor who decided"),
    sa.Column("tier_id", sa.Text, nullable=False),
    sa.Column("component_name", sa.Text, nullable=False),
    sa.Column("risk_score", sa.Double, nullable=True, doc="0..1"),
    sa.Column("sla_seconds", sa.Integer, nullable=False),
    sa.Column("contract_id", sa.Text, nullable=True),
    _updated_at(),
    info={"doc": "Human-in-the-loop decisions (fact `approvals`)."},
)

agent_queries = sa.Table(
    "agent_queries",
    source_metadata,
    sa.Column("query_id", sa.Text, primary_key=True),
    _timestamp("created_at", doc="event time"),
    sa.Column("agent_name", sa.Text, nullable=False),
    sa.Column("conversation_id", sa.Text, nullable=False),
    sa.Column("user_id", sa.Text, nullable=False, doc="personal data: stored only as a keyed hash (HMAC-SHA256)"),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("approved", sa.Boolean, nullable=True, doc="NULL = not reviewed"),
    sa.Column("human_edited", sa.Boolean, nullable=False),
    sa.Column("error_occurred", sa.Boolean, nullable=False),
    sa.Column("result_size_bytes", sa.Integer, nullable=True),
    sa.Column("cost_usd", sa.Double, nullable=False),
    _updated_at(),
    info={"doc": "Queries answered by agents (fact `queries`)."},
)

agent_feedback = sa.Table(
    "agent_feedback",
    source_metadata,
    sa.Column("feedback_id", sa.Text, primary_key=True),
    sa.Column("query_id", sa.Text, nullable=True),
    sa.Column("agent_name", sa.Text, nullable=False),
    sa.Column("conversation_id", sa.Text, nullable=False),
    sa.Column("annotator_id", sa.Text, nullable=False, doc="an actor"),
    _timestamp("created_at", doc="event time"),
    _timestamp("annotated_at", nullable=True),
    sa.Column("safe_to_send", sa.Boolean, nullable=True),
    sa.Column("clarity_score", sa.Integer, nullable=True, doc="1..5"),
    sa.Column("accuracy_score", sa.Integer, nullable=True, doc="1..5"),
    sa.Column("tone_score", sa.Integer, nullable=True, doc="1..5"),
    sa.Column("labels", JSON, nullable=False, doc="array of strings"),
    _updated_at(),
    info={"doc": "Training annotations of agent answers (fact `feedback`)."},
)

agent_traces = sa.Table(
    "agent_traces",
    source_metadata,
    sa.Column("trace_id", sa.Text, primary_key=True),
    _timestamp("created_at", doc="event time"),
    sa.Column("user_id", sa.Text, nullable=False, doc="personal data: stored only as a keyed hash (HMAC-SHA256)"),
    sa.Column("agent_name", sa.Text, nullable=False),
    sa.Column("facet", sa.Text, nullable=True),
    sa.Column("mode", sa.Text, nullable=True),
    sa.Column("confidence", sa.Double, nullable=True),
    sa.Column("safety_level", sa.Text, nullable=False, doc="normal, elevated, critical"),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column(
        "trace",
        JSON,
        nullable=False,
        doc='`{"plan": {"steps": [{"kind": "practice", "detail": "..."}, ...]}, "rules": {"fired": [...]}, '
        '"inference": {"rationale": [...]}}`; any part may be missing; a step of kind `practice` recommends '
        "the practice its `detail` names",
    ),
    _updated_at(),
    info={"doc": "Reasoning traces (fact `traces`; practices from their steps)."},
)

REFERENCE_TABLES: tuple[sa.Table, ...] = (autonomy_tiers, agents, actors, components, missions)
EVENT_TABLES: tuple[sa.Table, ...] = (
    action_contracts,
    error_events,
    approval_requests,
    agent_queries,
    agent_feedback,
    agent_traces,
)
"""Load order: members before the events that reference them."""

SOURCE_TABLES: tuple[sa.Table, ...] = REFERENCE_TABLES + EVENT_TABLES
