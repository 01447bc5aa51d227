"""What an ``advance`` step needs to know about the source before simulating the next period.

Timestamps are read raw (SQLite text in any allowed spelling, PostgreSQL
``timestamptz``) and parsed here; the newest ``updated_at`` is computed in SQL
on a form that sorts correctly, because SQLite's mixed spellings do not sort
as text. The demo keeps this small hook rather than borrowing the ETL's: the
generator is the ETL's test input and should not share its code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from warehouse.demo.batch import ID_PREFIXES, seqs_of
from warehouse.demo.timeline import to_micros
from warehouse.source import (
    EVENT_TABLES,
    REFERENCE_TABLES,
    action_contracts,
    actors,
    agents,
    autonomy_tiers,
    components,
    source_metadata,
)


class sortable_instant(FunctionElement[Any]):
    """A timestamp column in a form whose ``max`` is the latest instant."""

    inherit_cache = True
    name = "sortable_instant"


@compiles(sortable_instant)
def _sortable_instant(element: sortable_instant, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(sortable_instant, "sqlite")
def _sortable_instant_sqlite(element: sortable_instant, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m-%d %H:%M:%f', {compiler.process(element.clauses, **kw)})"


class day_prefix(FunctionElement[Any]):
    """A lower bound of the latest day that still uses the ``updated_at`` index.

    SQLite text of one day starts with the same ``YYYY-MM-DD`` whatever its
    spelling, so rows at or after the newest text's date hold the newest
    instant; PostgreSQL needs no widening.
    """

    inherit_cache = True
    name = "day_prefix"


@compiles(day_prefix)
def _day_prefix(element: day_prefix, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(day_prefix, "sqlite")
def _day_prefix_sqlite(element: day_prefix, compiler: Any, **kw: Any) -> str:
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


def parse_instants(values: Sequence[str | datetime]) -> np.ndarray:
    def micros(value: str | datetime) -> int:
        instant = datetime.fromisoformat(value) if isinstance(value, str) else value
        return to_micros(instant if instant.tzinfo else instant.replace(tzinfo=UTC))

    return np.fromiter((micros(value) for value in values), dtype=np.int64, count=len(values))


@dataclass(frozen=True)
class Open:
    """Rows still waiting for something (completion, a decision, a fix), oldest id first."""

    ids: list[str]
    since: np.ndarray
    keys: np.ndarray

    @classmethod
    def read(
        cls, connection: sa.Connection, table: str, key: str, since: str, condition: str, value: str | None
    ) -> Open:
        raw = sa.table(table, sa.column(key), sa.column(since), sa.column(condition))
        where = raw.c[condition].is_(None) if value is None else raw.c[condition] == value
        rows = connection.execute(sa.select(raw.c[key], raw.c[since]).where(where).order_by(raw.c[key])).all()
        ids = [row[0] for row in rows]
        return cls(ids, parse_instants([row[1] for row in rows]), seqs_of(ids))


@dataclass(frozen=True)
class SourceState:
    next_seqs: dict[str, int]
    newest_updates: dict[str, int]
    pending_contracts: Open
    pending_approvals: Open
    open_errors: Open
    running_missions: Open
    tiers: list[dict[str, Any]]
    agents: list[dict[str, Any]]
    registered: dict[str, set[str]]

    @property
    def newest_update(self) -> int:
        return max(self.newest_updates.values(), default=0)


def _next_seq(connection: sa.Connection, table: sa.Table) -> int:
    key = table.primary_key.columns[0]
    newest = connection.execute(sa.select(sa.func.max(key)).where(key.like(f"{ID_PREFIXES[table.name]}%"))).scalar()
    return 1 if newest is None else int(seqs_of([newest])[0]) + 1


def _newest_update(connection: sa.Connection, table: sa.Table) -> int:
    updated = sa.table(table.name, sa.column("updated_at")).c.updated_at
    latest_day = sa.select(day_prefix(sa.func.max(updated))).scalar_subquery()
    newest = connection.execute(sa.select(sa.func.max(sortable_instant(updated))).where(updated >= latest_day)).scalar()
    return 0 if newest is None else int(parse_instants([newest])[0])


def read_state(connection: sa.Connection, url: str) -> SourceState:
    missing = sorted(set(source_metadata.tables) - set(sa.inspect(connection).get_table_names()))
    if missing:
        raise ValueError(
            f"{url!r} is not a demo source (no table {', '.join(missing)}); run generate_demo_source first."
        )
    if not connection.execute(sa.select(sa.literal(1)).select_from(action_contracts).limit(1)).first():
        raise ValueError(f"{url!r} holds no demo snapshot; run generate_demo_source first.")
    tier_columns = [autonomy_tiers.c[name] for name in ("tier_id", "tier_name", "tier_level", "max_risk_score")]
    tiers = connection.execute(sa.select(*tier_columns).order_by(autonomy_tiers.c.tier_id)).mappings().all()
    agent_rows = (
        connection.execute(
            sa.select(agents.c.agent_name, agents.c.agent_type, agents.c.capabilities).order_by(agents.c.agent_name)
        )
        .mappings()
        .all()
    )
    event_tables = (*EVENT_TABLES, source_metadata.tables["missions"])
    return SourceState(
        next_seqs={table.name: _next_seq(connection, table) for table in event_tables},
        newest_updates={table.name: _newest_update(connection, table) for table in (*REFERENCE_TABLES, *EVENT_TABLES)},
        pending_contracts=Open.read(connection, "action_contracts", "contract_id", "created_at", "status", "pending"),
        pending_approvals=Open.read(
            connection, "approval_requests", "approval_id", "requested_at", "status", "pending"
        ),
        open_errors=Open.read(connection, "error_events", "event_id", "occurred_at", "resolved_at", None),
        running_missions=Open.read(connection, "missions", "mission_id", "started_at", "status", "running"),
        tiers=[dict(row) for row in tiers],
        agents=[dict(row) for row in agent_rows],
        registered={
            table.name: set(connection.execute(sa.select(table.primary_key.columns[0])).scalars())
            for table in (agents, actors, components)
        },
    )
