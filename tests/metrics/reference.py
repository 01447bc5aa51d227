"""An independent computation of every metric of the catalog, in plain Python over raw source rows.

It follows the text of ``spec/catalog.md`` and ``spec/sources.md``, not the
warehouse or the compiler: nothing here comes from ``metrics`` or
``warehouse.etl``. Tests compare the engine's answers with these.

    snapshots = [read_snapshot(url) for each ETL run]   # the source as each run saw it
    Reference(snapshots, hash_key="k").compute("verification_success_rate", "tier.name")
    -> {"Observe": 0.75, "Assist": None, None: 0.5}

Facts are the last snapshot's rows (the source's current state). Tiers and
agents are type 2: the first version a run observed is valid for all time
before it, each later observed change from the row's ``updated_at``. Actors,
components and missions are type 1 (the last snapshot's values).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from warehouse.source import SOURCE_TABLES

Row = dict[str, Any]
Snapshot = dict[str, list[Row]]
Aggregate = Callable[[list[Row]], Any]
Predicate = Callable[[Row], bool]

GRAINS = ("minute", "hour", "day", "week", "month", "quarter", "year")
TIME_PARTS = ("day_of_week", "hour_of_day", "is_weekend")


# --- reading the source -------------------------------------------------------------------------


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
_AGENT = {"name": "agent_name", "type": "agent_type", "sla_target_seconds": "sla_target_seconds", "cost_per_query_usd": "cost_per_query_usd"}
MEMBER_TABLES = {
    "tier": MemberTable("autonomy_tiers", "tier_id", _TIER, True),
    "agent": MemberTable("agents", "agent_name", _AGENT, True),
    "actor": MemberTable("actors", "actor_id", {"id": "actor_id", "type": "actor_type", "team": "team", "display_name": "display_name"}, False),
    "component": MemberTable("components", "component_name", {"name": "component_name", "kernel": "kernel"}, False),
    "mission": MemberTable("missions", "mission_id", {"id": "mission_id", "type": "mission_type", "status": "status"}, False),
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


_TRACE_VALUES = {"trace_facet": "facet", "trace_mode": "mode", "safety_level": "safety_level", "user": "user_id", "practice": "practice"}
_TRACE = FactSource("agent_traces", "created_at", {"agent": "agent_name"}, _TRACE_VALUES)
_CONTRACT_REFERENCES = {"tier": "tier_id", "agent": "agent_name", "actor": "actor_id", "component": "component_name", "mission": "mission_id"}
FACTS = {
    "verifications": FactSource("action_contracts", "created_at", _CONTRACT_REFERENCES, {"verification_status": "status", "action_type": "action_type"}),
    "errors": FactSource(
        "error_events", "occurred_at", {"tier": "tier_id", "agent": "agent_name", "component": "component_name"}, {"error_type": "error_type", "error_severity": "severity"}
    ),
    "approvals": FactSource(
        "approval_requests", "requested_at", {"tier": "tier_id", "agent": "agent_name", "actor": "approver_id", "component": "component_name"}, {"approval_status": "status"}
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


# --- aggregates -----------------------------------------------------------------------------------


def count(where: Predicate = lambda row: True) -> Aggregate:
    return lambda rows: sum(1 for row in rows if where(row))


def ratio(numerator: Predicate, denominator: Predicate) -> Aggregate:
    """Share of the denominator's rows that the numerator keeps; None without denominator rows."""

    def aggregate(rows: list[Row]) -> float | None:
        among = [row for row in rows if denominator(row)]
        return sum(1 for row in among if numerator(row)) / len(among) if among else None

    return aggregate


def _present(rows: list[Row], value: Callable[[Row], Any]) -> list[Any]:
    return [v for v in map(value, rows) if v is not None]


def mean(value: Callable[[Row], Any]) -> Aggregate:
    return lambda rows: statistics.fmean(values) if (values := _present(rows, value)) else None


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks, as PostgreSQL ``percentile_cont``."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def percentile(fraction: float, value: Callable[[Row], Any]) -> Aggregate:
    return lambda rows: percentile_cont([float(v) for v in _present(rows, value)], fraction)


def distinct(value: Callable[[Row], Any]) -> Aggregate:
    return lambda rows: len(set(_present(rows, value)))


def total(value: Callable[[Row], Any]) -> Aggregate:
    return lambda rows: float(sum(values)) if (values := _present(rows, value)) else None


def actions_per_mission(rows: list[Row]) -> float | None:
    missions = [row["mission_id"] for row in rows if row["mission_id"] is not None]
    return len(missions) / len(set(missions)) if missions else None


def seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


def column(name: str) -> Callable[[Row], Any]:
    return lambda row: row[name]


def equals(name: str, *values: Any) -> Predicate:
    return lambda row: row[name] in values


def is_true(name: str) -> Predicate:
    return lambda row: row[name] is True


def not_null(name: str) -> Predicate:
    return lambda row: row[name] is not None


def _approval_latency(row: Row) -> float | None:
    return seconds(row["requested_at"], row["resolved_at"]) if row["status"] in ("approved", "rejected") else None


def _overall_score(row: Row) -> float:
    return sum(row[name] or 0 for name in ("clarity_score", "accuracy_score", "tone_score")) / 3


@dataclass(frozen=True)
class FactMetric:
    fact: str
    aggregate: Aggregate


@dataclass(frozen=True)
class CrossMetric:
    """numerator / denominator per row of the shared dimensions, each side aggregated on its own."""

    numerator: str
    denominator: str


_completed = equals("status", "verified", "failed")
_decided = equals("status", "approved", "rejected")
_duration_ms = column("duration_ms")
_trace_latency = column("latency_ms")

METRICS: dict[str, FactMetric | CrossMetric] = {
    "verification_count": FactMetric("verifications", count()),
    "verification_success_count": FactMetric("verifications", count(equals("status", "verified"))),
    "verification_success_rate": FactMetric("verifications", ratio(equals("status", "verified"), _completed)),
    "rollback_rate": FactMetric("verifications", ratio(is_true("rolled_back"), _completed)),
    "avg_confidence": FactMetric("verifications", mean(column("confidence"))),
    "avg_verification_duration_ms": FactMetric("verifications", mean(_duration_ms)),
    "p50_verification_duration_ms": FactMetric("verifications", percentile(0.5, _duration_ms)),
    "p95_verification_duration_ms": FactMetric("verifications", percentile(0.95, _duration_ms)),
    "p99_verification_duration_ms": FactMetric("verifications", percentile(0.99, _duration_ms)),
    "actions_per_mission": FactMetric("verifications", actions_per_mission),
    "error_count": FactMetric("errors", count()),
    "auto_resolution_rate": FactMetric("errors", ratio(is_true("auto_resolved"), lambda row: True)),
    "resolution_rate": FactMetric("errors", ratio(not_null("resolved_at"), lambda row: True)),
    "mean_time_to_resolve_s": FactMetric("errors", mean(lambda row: seconds(row["occurred_at"], row["resolved_at"]))),
    "approval_count": FactMetric("approvals", count()),
    "pending_approval_count": FactMetric("approvals", count(equals("status", "pending"))),
    "approval_rate": FactMetric("approvals", ratio(equals("status", "approved"), _decided)),
    "avg_approval_latency_s": FactMetric("approvals", mean(_approval_latency)),
    "p95_approval_latency_s": FactMetric("approvals", percentile(0.95, _approval_latency)),
    "sla_compliance_rate": FactMetric(
        "approvals", ratio(lambda row: _approval_latency(row) <= row["sla_seconds"], lambda row: _approval_latency(row) is not None)
    ),
    "avg_risk_score": FactMetric("approvals", mean(column("risk_score"))),
    "mission_count": FactMetric("missions", count()),
    "mission_success_rate": FactMetric("missions", ratio(equals("status", "completed"), equals("status", "completed", "failed"))),
    "avg_mission_duration_s": FactMetric("missions", mean(lambda row: seconds(row["started_at"], row["completed_at"]))),
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
    "errors_per_verification": CrossMetric("error_count", "verification_count"),
}


# --- time -----------------------------------------------------------------------------------------


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """What the zone's clocks read at a naive UTC instant."""
    return instant.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def first_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The earliest naive UTC instant at which the clocks read ``wall`` or, where they skip it, jump past it."""
    readings = [wall - wall.replace(tzinfo=zone, fold=fold).utcoffset() for fold in (0, 1)]  # type: ignore[operator]
    real = [instant for instant in readings if _wall(instant, zone) == wall]
    if real:
        return min(real)
    low, high = min(readings), max(readings)  # the clocks read before wall at low, past it at high
    while high - low > timedelta(seconds=1):  # transitions fall on whole seconds
        middle = low + timedelta(seconds=(high - low) // timedelta(seconds=2))
        low, high = (middle, high) if _wall(middle, zone) < wall else (low, middle)
    return high


def bucket_start(moment: datetime, grain: str, zone: ZoneInfo) -> datetime:
    """The first instant (naive UTC) of the bucket holding a naive UTC instant, in the zone.

    Minutes and hours are the clock's minute or hour at the instant's own
    offset (the autumn hour that repeats is two buckets); longer buckets start
    at the first instant of their first local day.
    """
    local = moment.replace(tzinfo=UTC).astimezone(zone)
    wall = local.replace(tzinfo=None, second=0, microsecond=0)
    if grain in ("minute", "hour"):
        wall = wall if grain == "minute" else wall.replace(minute=0)
        own = wall - local.utcoffset()  # type: ignore[operator]
        return own if _wall(own, zone) == wall else first_instant(wall, zone)
    wall = wall.replace(hour=0, minute=0)
    if grain == "week":
        wall -= timedelta(days=wall.weekday())
    elif grain == "month":
        wall = wall.replace(day=1)
    elif grain == "quarter":
        wall = wall.replace(month=(wall.month - 1) // 3 * 3 + 1, day=1)
    elif grain == "year":
        wall = wall.replace(month=1, day=1)
    else:
        assert grain == "day", grain
    return first_instant(wall, zone)


def time_value(moment: datetime, attribute: str, zone: ZoneInfo) -> Any:
    local = moment.replace(tzinfo=UTC).astimezone(zone)
    if attribute == "day_of_week":
        return local.isoweekday()
    if attribute == "hour_of_day":
        return local.hour
    if attribute == "is_weekend":
        return local.isoweekday() >= 6
    return bucket_start(moment, attribute, zone).replace(tzinfo=UTC)


# --- the reference --------------------------------------------------------------------------------


class Reference:
    def __init__(self, snapshots: Sequence[Snapshot], *, hash_key: str) -> None:
        self.current = snapshots[-1]
        self.members = Members(snapshots)
        self._hash_key = hash_key.encode()

    def user_key(self, user_id: str) -> str:
        return hmac.new(self._hash_key, user_id.encode(), hashlib.sha256).hexdigest()

    def rows(self, fact: str, *, by_practice: bool) -> list[Row]:
        """A fact's rows; trace rows once per distinct practice (or once, practice None) when sliced by practice, step rows once per step."""
        rows = self.current[FACTS[fact].table]
        if fact == "practice_steps":
            return [{**row, "practice": practice} for row in rows for practice in practices(row["trace"])]
        if fact == "traces" and by_practice:  # a trace that recommends nothing has the null practice
            return [{**row, "practice": practice} for row in rows for practice in dict.fromkeys(practices(row["trace"]) or [None])]
        return rows

    def group(self, fact: FactSource, row: Row, key: str, zone: ZoneInfo) -> Any:
        dimension, _, attribute = key.partition(".")
        if dimension == "time":
            return time_value(row[fact.time], attribute, zone)
        if dimension in fact.references:
            return self.members.attribute(dimension, attribute, row[fact.references[dimension]], row[fact.time])
        value = row[fact.values[dimension]]
        return self.user_key(value) if dimension == "user" and value is not None else value

    def compute(self, metric: str, key: str | None = None, timezone: str = "UTC") -> dict[Any, Any]:
        """``{group value: metric value}``; the single group is ``None`` without a dimension."""
        definition = METRICS[metric]
        if isinstance(definition, CrossMetric):
            return self._cross(definition, key, timezone)
        rows = self.rows(definition.fact, by_practice=key == "practice")
        if key is None:
            return {None: definition.aggregate(rows)}
        zone, fact = ZoneInfo(timezone), FACTS[definition.fact]
        groups: dict[Any, list[Row]] = defaultdict(list)
        for row in rows:
            groups[self.group(fact, row, key, zone)].append(row)
        return {value: definition.aggregate(members) for value, members in groups.items()}

    def _cross(self, definition: CrossMetric, key: str | None, timezone: str) -> dict[Any, Any]:
        numerator = self.compute(definition.numerator, key, timezone)
        denominator = self.compute(definition.denominator, key, timezone)
        return {
            value: numerator.get(value, 0) / denominator[value] if denominator.get(value) else None
            for value in numerator.keys() | denominator.keys()
        }
