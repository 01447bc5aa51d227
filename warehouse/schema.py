"""The star schema: conformed dimensions, one fact table per event kind, ETL bookkeeping.

One ``MetaData`` serves DuckDB and PostgreSQL. Timestamps are naive UTC, kept at
full precision on the facts; time buckets are computed at query time so that
any time zone works, so there is no calendar table. Dimensions use integer
surrogate keys. Tiers and agents keep type-2 history: every version of a member
shares the member's key and carries ``[valid_from, valid_to)``; facts store the
member key and are joined as of their event time. A member first seen as a
reference from a fact is an *inferred* row (attributes null) until its reference
row arrives and fills it in.

Facts hold raw source values only: durations and scores derived from them are
computed columns of the metric registry (``metrics/catalog/facts.yaml``),
compiled into each query. A warehouse created before that may still carry the
columns that used to store them; they are no longer read or written.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

BEGINNING_OF_TIME = datetime(1, 1, 1)
END_OF_TIME = datetime(9999, 12, 31)

metadata = sa.MetaData()


def _key(name: str, *, primary: bool = False) -> sa.Column:
    return sa.Column(name, sa.Integer, primary_key=primary, nullable=not primary, autoincrement=False)


def _text(name: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=nullable)


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=False), nullable=nullable)


def _bookkeeping() -> list[sa.Column]:
    return [
        sa.Column("is_inferred", sa.Boolean, nullable=False),
        _timestamp("source_updated_at"),
    ]


def _history() -> list[sa.Column]:
    return [
        _timestamp("valid_from", nullable=False),
        _timestamp("valid_to", nullable=False),
        sa.Column("is_current", sa.Boolean, nullable=False),
    ]


# --- dimensions -------------------------------------------------------------

dim_tier = sa.Table(
    "dim_tier",
    metadata,
    _key("tier_key"),
    _text("tier_id", nullable=False),
    _text("tier_name"),
    sa.Column("tier_level", sa.Integer),
    sa.Column("max_risk_score", sa.Double),
    *_history(),
    *_bookkeeping(),
    sa.PrimaryKeyConstraint("tier_key", "valid_from"),
)

dim_agent = sa.Table(
    "dim_agent",
    metadata,
    _key("agent_key"),
    _text("agent_name", nullable=False),
    _text("agent_type"),
    _text("capabilities"),
    sa.Column("sla_target_seconds", sa.Integer),
    sa.Column("cost_per_query_usd", sa.Double),
    *_history(),
    *_bookkeeping(),
    sa.PrimaryKeyConstraint("agent_key", "valid_from"),
)

dim_actor = sa.Table(
    "dim_actor",
    metadata,
    _key("actor_key", primary=True),
    _text("actor_id", nullable=False),
    _text("actor_type"),
    _text("display_name"),
    _text("team"),
    *_bookkeeping(),
    sa.UniqueConstraint("actor_id"),
)

dim_component = sa.Table(
    "dim_component",
    metadata,
    _key("component_key", primary=True),
    _text("component_name", nullable=False),
    _text("kernel"),
    *_bookkeeping(),
    sa.UniqueConstraint("component_name"),
)

dim_mission = sa.Table(
    "dim_mission",
    metadata,
    _key("mission_key", primary=True),
    _text("mission_id", nullable=False),
    _text("mission_type"),
    _text("status"),
    *_bookkeeping(),
    sa.UniqueConstraint("mission_id"),
)

# --- facts ------------------------------------------------------------------


def _fact(name: str, natural_key: str, event_time: str, *columns: sa.Column) -> sa.Table:
    table = sa.Table(
        name,
        metadata,
        sa.Column(natural_key, sa.Text, primary_key=True),
        _timestamp(event_time, nullable=False),
        *columns,
        _timestamp("source_updated_at", nullable=False),
    )
    sa.Index(f"ix_{name}_{event_time}", table.c[event_time]).ddl_if(dialect="postgresql")
    return table


fact_verifications = _fact(
    "fact_verifications",
    "contract_id",
    "created_at",
    _timestamp("completed_at"),
    _key("mission_key"),
    _key("component_key"),
    _key("tier_key"),
    _key("actor_key"),
    _key("agent_key"),
    _text("action_type"),
    _text("status"),
    sa.Column("rolled_back", sa.Boolean),
    sa.Column("confidence", sa.Double),
    sa.Column("duration_ms", sa.BigInteger),
)

fact_errors = _fact(
    "fact_errors",
    "event_id",
    "occurred_at",
    _timestamp("resolved_at"),
    _key("component_key"),
    _key("tier_key"),
    _key("agent_key"),
    _text("error_type"),
    _text("severity"),
    sa.Column("auto_resolved", sa.Boolean),
)

fact_approvals = _fact(
    "fact_approvals",
    "approval_id",
    "requested_at",
    _timestamp("resolved_at"),
    _text("status"),
    _key("agent_key"),
    _key("approver_key"),
    _key("tier_key"),
    _key("component_key"),
    sa.Column("risk_score", sa.Double),
    sa.Column("sla_seconds", sa.BigInteger),
    _text("contract_id"),
)

fact_missions = _fact(
    "fact_missions",
    "mission_id",
    "started_at",
    _timestamp("completed_at"),
    _key("mission_key"),
    _text("mission_type"),
    _text("status"),
)

fact_queries = _fact(
    "fact_queries",
    "query_id",
    "created_at",
    _key("agent_key"),
    _text("conversation_id"),
    _text("user_key"),
    sa.Column("latency_ms", sa.BigInteger),
    sa.Column("approved", sa.Boolean),
    sa.Column("human_edited", sa.Boolean),
    sa.Column("error_occurred", sa.Boolean),
    sa.Column("result_size_bytes", sa.BigInteger),
    sa.Column("cost_usd", sa.Double),
)

fact_feedback = _fact(
    "fact_feedback",
    "feedback_id",
    "created_at",
    _timestamp("annotated_at"),
    _text("query_id"),
    _key("agent_key"),
    _key("annotator_key"),
    _text("conversation_id"),
    sa.Column("safe_to_send", sa.Boolean),
    sa.Column("clarity_score", sa.Integer),
    sa.Column("accuracy_score", sa.Integer),
    sa.Column("tone_score", sa.Integer),
    _text("labels"),
)

fact_traces = _fact(
    "fact_traces",
    "trace_id",
    "created_at",
    _text("user_key"),
    _key("agent_key"),
    _text("facet"),
    _text("mode"),
    sa.Column("confidence", sa.Double),
    _text("safety_level"),
    sa.Column("latency_ms", sa.BigInteger),
)

bridge_trace_practices = sa.Table(
    "bridge_trace_practices",
    metadata,
    sa.Column("trace_id", sa.Text, nullable=False),
    sa.Column("practice", sa.Text, nullable=False),
    sa.Column("step_count", sa.Integer, nullable=False),
    # Denormalised from the trace so practice steps are a fact of their own.
    _timestamp("created_at", nullable=False),
    _key("agent_key"),
    _text("user_key"),
    _text("facet"),
    _text("mode"),
    _text("safety_level"),
    sa.PrimaryKeyConstraint("trace_id", "practice"),
)
"""One row per (trace, practice it recommends); ``step_count`` counts its steps naming that practice."""

# --- ETL bookkeeping ----------------------------------------------------------

etl_watermarks = sa.Table(
    "etl_watermarks",
    metadata,
    sa.Column("source_table", sa.Text, primary_key=True),
    _timestamp("watermark", nullable=False),
    _timestamp("loaded_at", nullable=False),
)

etl_runs = sa.Table(
    "etl_runs",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    _timestamp("started_at", nullable=False),
    _timestamp("finished_at"),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
)

etl_run_tables = sa.Table(
    "etl_run_tables",
    metadata,
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("source_table", sa.Text, nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False),
    sa.Column("rows_inserted", sa.BigInteger, nullable=False),
    sa.Column("rows_updated", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("run_id", "source_table"),
)

etl_settings = sa.Table(
    "etl_settings",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
"""Facts the warehouse must keep consistent across runs, such as the fingerprint of the user-hash key."""


def create_schema(connection: sa.Connection) -> None:
    """Create every table that is missing; running it again is harmless."""
    metadata.create_all(connection, checkfirst=True)
