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

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from warehouse import source

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
    return [sa.Column("is_inferred", sa.Boolean, nullable=False), _timestamp("source_updated_at")]


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
#
# Each fact declares its physical mapping once: the source table, its natural
# key and event time, and per column whether it is copied, a member key or a
# user key. The fact tables are derived from these declarations, and so is the
# ETL (``warehouse.etl.loads``).


@dataclass(frozen=True)
class Copied:
    """A source column copied as parsed into the same-named fact column; ``type`` overrides the source's."""

    name: str
    type: sa.types.TypeEngine[Any] | None = None


@dataclass(frozen=True)
class MemberKey:
    """The surrogate key of the member the source column names (an inferred member if it is not known yet)."""

    name: str
    dimension: str
    """The ``dim_<dimension>`` table."""
    source: str


@dataclass(frozen=True)
class UserKey:
    """The keyed hash (HMAC) of a source column holding personal data; the raw value never lands."""

    name: str
    source: str


FactColumn = Copied | MemberKey | UserKey


@dataclass(frozen=True)
class FactMapping:
    """How one source event table lands as one fact table: one row per source row, keyed by its natural key."""

    table: sa.Table
    source: sa.Table
    natural_key: str
    event_time: str
    columns: tuple[FactColumn, ...]

    def of(self, kind: type[FactColumn]) -> list[Any]:
        return [column for column in self.columns if isinstance(column, kind)]


def _warehouse_type(column: sa.Column[Any]) -> sa.types.TypeEngine[Any]:
    """A source column's type in the warehouse: naive UTC timestamps, JSON as text."""
    if isinstance(column.type, sa.DateTime):
        return sa.DateTime(timezone=False)
    if isinstance(column.type, sa.JSON):
        return sa.Text()
    return column.type


def _fact_column(source_table: sa.Table, column: FactColumn) -> sa.Column[Any]:
    if isinstance(column, MemberKey):
        return _key(column.name)
    if isinstance(column, UserKey):
        return _text(column.name)
    return sa.Column(column.name, column.type or _warehouse_type(source_table.c[column.name]))


def _fact(name: str, source_table: sa.Table, natural_key: str, event_time: str, *columns: FactColumn) -> FactMapping:
    table = sa.Table(
        name,
        metadata,
        sa.Column(natural_key, sa.Text, primary_key=True),
        _timestamp(event_time, nullable=False),
        *(_fact_column(source_table, column) for column in columns),
        _timestamp("source_updated_at", nullable=False),
    )
    sa.Index(f"ix_{name}_{event_time}", table.c[event_time]).ddl_if(dialect="postgresql")
    return FactMapping(
        table, source_table, natural_key, event_time, (Copied(natural_key), Copied(event_time), *columns)
    )


_BIG = sa.BigInteger()
"""Durations, sizes and SLAs are stored 64-bit wide whatever the source's integer width."""

VERIFICATIONS = _fact(
    "fact_verifications",
    source.action_contracts,
    "contract_id",
    "created_at",
    Copied("completed_at"),
    MemberKey("mission_key", "mission", "mission_id"),
    MemberKey("component_key", "component", "component_name"),
    MemberKey("tier_key", "tier", "tier_id"),
    MemberKey("actor_key", "actor", "actor_id"),
    MemberKey("agent_key", "agent", "agent_name"),
    Copied("action_type"),
    Copied("status"),
    Copied("rolled_back"),
    Copied("confidence"),
    Copied("duration_ms", _BIG),
)

ERRORS = _fact(
    "fact_errors",
    source.error_events,
    "event_id",
    "occurred_at",
    Copied("resolved_at"),
    MemberKey("component_key", "component", "component_name"),
    MemberKey("tier_key", "tier", "tier_id"),
    MemberKey("agent_key", "agent", "agent_name"),
    Copied("error_type"),
    Copied("severity"),
    Copied("auto_resolved"),
)

APPROVALS = _fact(
    "fact_approvals",
    source.approval_requests,
    "approval_id",
    "requested_at",
    Copied("resolved_at"),
    Copied("status"),
    MemberKey("agent_key", "agent", "agent_name"),
    MemberKey("approver_key", "actor", "approver_id"),
    MemberKey("tier_key", "tier", "tier_id"),
    MemberKey("component_key", "component", "component_name"),
    Copied("risk_score"),
    Copied("sla_seconds", _BIG),
    Copied("contract_id"),
)

MISSIONS = _fact(
    "fact_missions",
    source.missions,
    "mission_id",
    "started_at",
    Copied("completed_at"),
    MemberKey("mission_key", "mission", "mission_id"),
    Copied("mission_type"),
    Copied("status"),
)

QUERIES = _fact(
    "fact_queries",
    source.agent_queries,
    "query_id",
    "created_at",
    MemberKey("agent_key", "agent", "agent_name"),
    Copied("conversation_id"),
    UserKey("user_key", "user_id"),
    Copied("latency_ms", _BIG),
    Copied("approved"),
    Copied("human_edited"),
    Copied("error_occurred"),
    Copied("result_size_bytes", _BIG),
    Copied("cost_usd"),
)

FEEDBACK = _fact(
    "fact_feedback",
    source.agent_feedback,
    "feedback_id",
    "created_at",
    Copied("annotated_at"),
    Copied("query_id"),
    MemberKey("agent_key", "agent", "agent_name"),
    MemberKey("annotator_key", "actor", "annotator_id"),
    Copied("conversation_id"),
    Copied("safe_to_send"),
    Copied("clarity_score"),
    Copied("accuracy_score"),
    Copied("tone_score"),
    Copied("labels"),
)

TRACES = _fact(
    "fact_traces",
    source.agent_traces,
    "trace_id",
    "created_at",
    UserKey("user_key", "user_id"),
    MemberKey("agent_key", "agent", "agent_name"),
    Copied("facet"),
    Copied("mode"),
    Copied("confidence"),
    Copied("safety_level"),
    Copied("latency_ms", _BIG),
)

FACTS = (VERIFICATIONS, ERRORS, APPROVALS, MISSIONS, QUERIES, FEEDBACK, TRACES)

fact_verifications = VERIFICATIONS.table
fact_errors = ERRORS.table
fact_approvals = APPROVALS.table
fact_missions = MISSIONS.table
fact_queries = QUERIES.table
fact_feedback = FEEDBACK.table
fact_traces = TRACES.table

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

CHILDREN: dict[str, tuple[sa.Table, ...]] = {TRACES.table.name: (bridge_trace_practices,)}
"""Per fact table, the tables whose rows copy its rows' event time and member keys and are replaced with them."""

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

etl_run_rollups = sa.Table(
    "etl_run_rollups",
    metadata,
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("rollup", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("run_id", "rollup"),
)
"""Per run, what each rollup did (created, rebuilt, dropped, or refreshed where the run touched), rows, seconds."""

etl_settings = sa.Table(
    "etl_settings",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
"""Facts the warehouse must keep consistent across runs, such as the fingerprint of the user-hash key."""


def create_schema(connection: sa.Connection) -> None:
    """Create every table that is missing; running it again is harmless (and one catalog query when none is)."""
    present = set(sa.inspect(connection).get_table_names())
    missing = [table for table in metadata.sorted_tables if table.name not in present]
    if missing:
        metadata.create_all(connection, tables=missing, checkfirst=False)
