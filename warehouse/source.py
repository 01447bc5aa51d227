"""The operational source contract (``sources.md``) as SQLAlchemy tables.

The ETL reads exactly these columns, the demo generator writes them, and tests
build sources from them. Timestamps are declared as ``DateTime(timezone=True)``
so PostgreSQL gets ``timestamptz``; SQLite stores ISO-8601 text either way.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

source_metadata = sa.MetaData()
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _updated_at() -> sa.Column:
    return sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, index=True)


autonomy_tiers = sa.Table(
    "autonomy_tiers",
    source_metadata,
    sa.Column("tier_id", sa.Text, primary_key=True),
    sa.Column("tier_name", sa.Text, nullable=False),
    sa.Column("tier_level", sa.Integer, nullable=False),
    sa.Column("max_risk_score", sa.Double, nullable=False),
    _updated_at(),
)

agents = sa.Table(
    "agents",
    source_metadata,
    sa.Column("agent_name", sa.Text, primary_key=True),
    sa.Column("agent_type", sa.Text, nullable=False),
    sa.Column("capabilities", JSON, nullable=False),
    sa.Column("sla_target_seconds", sa.Integer, nullable=False),
    sa.Column("cost_per_query_usd", sa.Double, nullable=False),
    _updated_at(),
)

actors = sa.Table(
    "actors",
    source_metadata,
    sa.Column("actor_id", sa.Text, primary_key=True),
    sa.Column("actor_type", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("team", sa.Text, nullable=True),
    _updated_at(),
)

components = sa.Table(
    "components",
    source_metadata,
    sa.Column("component_name", sa.Text, primary_key=True),
    sa.Column("kernel", sa.Text, nullable=False),
    _updated_at(),
)

missions = sa.Table(
    "missions",
    source_metadata,
    sa.Column("mission_id", sa.Text, primary_key=True),
    sa.Column("mission_type", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    _timestamp("started_at"),
    _timestamp("completed_at", nullable=True),
    _updated_at(),
)

action_contracts = sa.Table(
    "action_contracts",
    source_metadata,
    sa.Column("contract_id", sa.Text, primary_key=True),
    sa.Column("mission_id", sa.Text, nullable=True),
    sa.Column("action_type", sa.Text, nullable=False),
    sa.Column("component_name", sa.Text, nullable=False),
    sa.Column("tier_id", sa.Text, nullable=False),
    sa.Column("actor_id", sa.Text, nullable=False),
    sa.Column("agent_name", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("rolled_back", sa.Boolean, nullable=False),
    sa.Column("confidence", sa.Double, nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=True),
    _timestamp("created_at"),
    _timestamp("completed_at", nullable=True),
    _updated_at(),
)

error_events = sa.Table(
    "error_events",
    source_metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    _timestamp("occurred_at"),
    sa.Column("component_name", sa.Text, nullable=False),
    sa.Column("tier_id", sa.Text, nullable=True),
    sa.Column("agent_name", sa.Text, nullable=True),
    sa.Column("error_type", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("auto_resolved", sa.Boolean, nullable=False),
    _timestamp("resolved_at", nullable=True),
    _updated_at(),
)

approval_requests = sa.Table(
    "approval_requests",
    source_metadata,
    sa.Column("approval_id", sa.Text, primary_key=True),
    _timestamp("requested_at"),
    _timestamp("resolved_at", nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("agent_name", sa.Text, nullable=True),
    sa.Column("approver_id", sa.Text, nullable=True),
    sa.Column("tier_id", sa.Text, nullable=False),
    sa.Column("component_name", sa.Text, nullable=False),
    sa.Column("risk_score", sa.Double, nullable=True),
    sa.Column("sla_seconds", sa.Integer, nullable=False),
    sa.Column("contract_id", sa.Text, nullable=True),
    _updated_at(),
)

agent_queries = sa.Table(
    "agent_queries",
    source_metadata,
    sa.Column("query_id", sa.Text, primary_key=True),
    _timestamp("created_at"),
    sa.Column("agent_name", sa.Text, nullable=False),
    sa.Column("conversation_id", sa.Text, nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("approved", sa.Boolean, nullable=True),
    sa.Column("human_edited", sa.Boolean, nullable=False),
    sa.Column("error_occurred", sa.Boolean, nullable=False),
    sa.Column("result_size_bytes", sa.Integer, nullable=True),
    sa.Column("cost_usd", sa.Double, nullable=False),
    _updated_at(),
)

agent_feedback = sa.Table(
    "agent_feedback",
    source_metadata,
    sa.Column("feedback_id", sa.Text, primary_key=True),
    sa.Column("query_id", sa.Text, nullable=True),
    sa.Column("agent_name", sa.Text, nullable=False),
    sa.Column("conversation_id", sa.Text, nullable=False),
    sa.Column("annotator_id", sa.Text, nullable=False),
    _timestamp("created_at"),
    _timestamp("annotated_at", nullable=True),
    sa.Column("safe_to_send", sa.Boolean, nullable=True),
    sa.Column("clarity_score", sa.Integer, nullable=True),
    sa.Column("accuracy_score", sa.Integer, nullable=True),
    sa.Column("tone_score", sa.Integer, nullable=True),
    sa.Column("labels", JSON, nullable=False),
    _updated_at(),
)

agent_traces = sa.Table(
    "agent_traces",
    source_metadata,
    sa.Column("trace_id", sa.Text, primary_key=True),
    _timestamp("created_at"),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("agent_name", sa.Text, nullable=False),
    sa.Column("facet", sa.Text, nullable=True),
    sa.Column("mode", sa.Text, nullable=True),
    sa.Column("confidence", sa.Double, nullable=True),
    sa.Column("safety_level", sa.Text, nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("trace", JSON, nullable=False),
    _updated_at(),
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
