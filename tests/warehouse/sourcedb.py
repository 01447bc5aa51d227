"""A writable operational source for tests, on SQLite or PostgreSQL.

Rows are given as Python values; on SQLite they are written the way the
contract allows (ISO-8601 text in several forms, 0/1, JSON text), so the ETL's
parsing is exercised too.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from warehouse.source import source_metadata

_SQLITE_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S+00:00", "%Y-%m-%dT%H:%M:%S.%f")

T0 = datetime(2025, 11, 3, 9, 0)
"""A Monday morning, UTC: the tests' reference instant."""

DEFAULTS: dict[str, dict[str, Any]] = {
    "autonomy_tiers": {"tier_name": "Observe", "tier_level": 0, "max_risk_score": 0.2},
    "agents": {"agent_type": "data", "capabilities": ["sql"], "sla_target_seconds": 30, "cost_per_query_usd": 0.01},
    "actors": {"actor_type": "human", "display_name": "Someone", "team": "ops"},
    "components": {"kernel": "core"},
    "missions": {"mission_type": "deploy", "status": "running", "completed_at": None},
    "action_contracts": {
        "mission_id": None,
        "action_type": "deploy",
        "component_name": "api",
        "tier_id": "tier_0",
        "actor_id": "alice",
        "agent_name": None,
        "status": "verified",
        "rolled_back": False,
        "confidence": None,
        "duration_ms": None,
        "completed_at": None,
    },
    "error_events": {
        "component_name": "api",
        "tier_id": None,
        "agent_name": None,
        "error_type": "timeout",
        "severity": "low",
        "auto_resolved": False,
        "resolved_at": None,
    },
    "approval_requests": {
        "resolved_at": None,
        "status": "pending",
        "agent_name": None,
        "approver_id": None,
        "tier_id": "tier_0",
        "component_name": "api",
        "risk_score": None,
        "sla_seconds": 300,
        "contract_id": None,
    },
    "agent_queries": {
        "agent_name": "analyst",
        "conversation_id": "conv-1",
        "user_id": "user-1",
        "latency_ms": 100,
        "approved": None,
        "human_edited": False,
        "error_occurred": False,
        "result_size_bytes": None,
        "cost_usd": 0.01,
    },
    "agent_feedback": {
        "query_id": None,
        "agent_name": "analyst",
        "conversation_id": "conv-1",
        "annotator_id": "alice",
        "annotated_at": None,
        "safe_to_send": None,
        "clarity_score": None,
        "accuracy_score": None,
        "tone_score": None,
        "labels": [],
    },
    "agent_traces": {
        "user_id": "user-1",
        "agent_name": "analyst",
        "facet": None,
        "mode": None,
        "confidence": None,
        "safety_level": "normal",
        "latency_ms": 100,
        "trace": {},
    },
}


class SourceDB:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = sa.create_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        source_metadata.create_all(self.engine)
        self._formats = itertools.cycle(_SQLITE_FORMATS)

    def _value(self, column: sa.Column[Any], value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, datetime):
            if self.is_sqlite:
                return value.strftime(next(self._formats))
            return value.replace(tzinfo=UTC)
        if self.is_sqlite and isinstance(column.type, sa.JSON):
            return json.dumps(value)
        return value

    def _row(self, table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
        return {name: self._value(table.c[name], value) for name, value in row.items()}

    def _raw(self, table: sa.Table) -> sa.TableClause | sa.Table:
        # SQLite gets untyped columns so our strings are stored exactly as written.
        return sa.table(table.name, *(sa.column(c.name) for c in table.columns)) if self.is_sqlite else table

    def insert(self, table_name: str, *rows: dict[str, Any]) -> None:
        table = source_metadata.tables[table_name]
        full = [self._row(table, {**DEFAULTS[table_name], **row}) for row in rows]
        with self.engine.begin() as connection:
            connection.execute(sa.insert(self._raw(table)), full)

    def update(self, table_name: str, key: str, **values: Any) -> None:
        table = source_metadata.tables[table_name]
        raw = self._raw(table)
        key_column = table.primary_key.columns[0].name
        with self.engine.begin() as connection:
            connection.execute(sa.update(raw).where(raw.c[key_column] == key).values(self._row(table, values)))

    def loosen(self, table_name: str) -> None:
        """Recreate the (empty) table without NOT NULL or key constraints, as a source that enforces none has it."""
        table = source_metadata.tables[table_name]
        loose = sa.Table(table_name, sa.MetaData(), *(sa.Column(column.name, column.type) for column in table.columns))
        with self.engine.begin() as connection:
            table.drop(connection)
            loose.create(connection)

    def execute(self, sql: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(sa.text(sql))

    def dispose(self) -> None:
        self.engine.dispose()
