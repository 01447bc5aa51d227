"""The source as the tests read it: rows parsed by hand, members with their history, facts' columns."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from warehouse.source import SOURCE_TABLES

Row = dict[str, Any]
Snapshot = dict[str, list[Row]]


def _timestamp(value: object) -> datetime | None:
    """ISO-8601 text (any of the contract's forms) or a datetime -> naive UTC."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def _parser(column: sa.Column[Any]) -> Callable[[object], Any]:
    if isinstance(column.type, sa.DateTime):
        return _timestamp
    if isinstance(column.type, sa.Boolean):
        return lambda value: None if value is None else bool(int(value))  # type: ignore[call-overload]
    if isinstance(column.type, sa.JSON):
        return lambda value: json.loads(value) if isinstance(value, str) else value
    return lambda value: value


def read_snapshot(url: str) -> Snapshot:
    """Every source table's rows, parsed by hand from what the database stores."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    snapshot: Snapshot = {}
    with engine.connect() as connection:
        for table in SOURCE_TABLES:
            untyped = sa.table(table.name, *(sa.column(column.name) for column in table.columns))
            parsers = {column.name: _parser(column) for column in table.columns}
            rows = connection.execute(sa.select(untyped)).mappings()
            snapshot[table.name] = [{name: parsers[name](value) for name, value in row.items()} for row in rows]
    engine.dispose()
    return snapshot


# --- members --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberTable:
    table: str
    key: str
    attributes: dict[str, str]
    """dimension attribute -> source column"""
    type2: bool


_TIER = {"id": "tier_id", "name": "tier_name", "level": "tier_level", "max_risk_score": "max_risk_score"}
_AGENT = {
    "name": "agent_name",
    "type": "agent_type",
    "sla_target_seconds": "sla_target_seconds",
    "cost_per_query_usd": "cost_per_query_usd",
}
MEMBER_TABLES = {
    "tier": MemberTable("autonomy_tiers", "tier_id", _TIER, True),
    "agent": MemberTable("agents", "agent_name", _AGENT, True),
    "actor": MemberTable(
        "actors",
        "actor_id",
        {"id": "actor_id", "type": "actor_type", "team": "team", "display_name": "display_name"},
        False,
    ),
    "component": MemberTable("components", "component_name", {"name": "component_name", "kernel": "kernel"}, False),
    "mission": MemberTable(
        "missions", "mission_id", {"id": "mission_id", "type": "mission_type", "status": "status"}, False
    ),
}


@dataclass(frozen=True)
class Version:
    valid_from: datetime | None
    """None: valid for all time before the next version."""
    row: Row


def _versions(snapshots: Sequence[Snapshot], member: MemberTable) -> dict[Any, list[Version]]:
    history: dict[Any, list[Version]] = {}
    for snapshot in snapshots:
        for row in snapshot[member.table]:
            versions = history.setdefault(row[member.key], [])
            if not versions:
                versions.append(Version(None, row))
            elif not member.type2:
                versions[0] = Version(None, row)
            elif row != versions[-1].row:
                versions.append(Version(row["updated_at"], row))
    return history


class Members:
    """Attribute values of table-dimension members, at an event time."""

    def __init__(self, snapshots: Sequence[Snapshot]) -> None:
        self._history = {name: _versions(snapshots, member) for name, member in MEMBER_TABLES.items()}

    def attribute(self, dimension: str, attribute: str, reference: Any, at: datetime) -> Any:
        member = MEMBER_TABLES[dimension]
        column = member.attributes[attribute]
        if reference is None:
            return None
        versions = self._history[dimension].get(reference)
        if versions is None:  # unknown member: only its id shows
            return reference if column == member.key else None
        valid = [version for version in versions if version.valid_from is None or version.valid_from <= at]
        return valid[-1].row[column]

    def known(self, dimension: str) -> set[Any]:
        return set(self._history[dimension])


# --- facts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactSource:
    table: str
    time: str
    references: dict[str, str]
    """table dimension -> the fact's reference column"""
    values: dict[str, str]
    """value dimension -> the fact's column"""


_TRACE_VALUES = {
    "trace_facet": "facet",
    "trace_mode": "mode",
    "safety_level": "safety_level",
    "user": "user_id",
    "practice": "practice",
}
_TRACE = FactSource("agent_traces", "created_at", {"agent": "agent_name"}, _TRACE_VALUES)
_CONTRACT_REFERENCES = {
    "tier": "tier_id",
    "agent": "agent_name",
    "actor": "actor_id",
    "component": "component_name",
    "mission": "mission_id",
}
FACTS = {
    "verifications": FactSource(
        "action_contracts",
        "created_at",
        _CONTRACT_REFERENCES,
        {"verification_status": "status", "action_type": "action_type"},
    ),
    "errors": FactSource(
        "error_events",
        "occurred_at",
        {"tier": "tier_id", "agent": "agent_name", "component": "component_name"},
        {"error_type": "error_type", "error_severity": "severity"},
    ),
    "approvals": FactSource(
        "approval_requests",
        "requested_at",
        {"tier": "tier_id", "agent": "agent_name", "actor": "approver_id", "component": "component_name"},
        {"approval_status": "status"},
    ),
    "missions": FactSource("missions", "started_at", {"mission": "mission_id"}, {}),
    "queries": FactSource("agent_queries", "created_at", {"agent": "agent_name"}, {"user": "user_id"}),
    "feedback": FactSource("agent_feedback", "created_at", {"agent": "agent_name", "actor": "annotator_id"}, {}),
    "traces": _TRACE,
    "practice_steps": _TRACE,
}


def practices(trace: Any) -> list[Any]:
    """The practice of every plan step whose kind is ``practice``, repeats included."""
    plan = trace.get("plan") if isinstance(trace, dict) else None
    steps = plan.get("steps") if isinstance(plan, dict) else None
    return [step.get("detail") for step in steps or () if isinstance(step, dict) and step.get("kind") == "practice"]
