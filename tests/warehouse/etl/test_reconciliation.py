"""Every column of every fact row equals an independent computation over its raw source row.

On the demo source (a snapshot, then one more day of activity: updates,
renamed members, late commits), for each source kind x warehouse kind. The
expected rows are plain Python over the rows as the source driver returns
them: SQLite text and 0/1 parsed here, durations from the timestamps, user
keys recomputed with ``hmac``; surrogate keys are resolved to natural keys,
and a type-2 member to the version valid at the fact's event time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from tests.warehouse.conftest import HASH_KEY
from warehouse.connections import warehouse_url as sync_warehouse_url
from warehouse.demo import advance_demo_source, generate_demo_source
from warehouse.etl import run_etl

SCALE = 0.05
Row = dict[str, Any]


def _ts(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _user_key(user_id: str) -> str:
    return hmac.new(HASH_KEY.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Fact:
    table: str
    source: str
    key: str
    event_time: str
    expected: Callable[[Row], Row]
    """The fact row from its source row; member references appear as ``(dimension, natural key)``."""


def _member(dimension: str, natural: str | None) -> tuple[str, str | None]:
    return (dimension, natural)


FACTS = [
    Fact("fact_verifications", "action_contracts", "contract_id", "created_at", lambda r: {
        "contract_id": r["contract_id"], "created_at": _ts(r["created_at"]), "completed_at": _ts(r["completed_at"]),
        "mission_key": _member("mission", r["mission_id"]), "component_key": _member("component", r["component_name"]),
        "tier_key": _member("tier", r["tier_id"]), "actor_key": _member("actor", r["actor_id"]),
        "agent_key": _member("agent", r["agent_name"]), "action_type": r["action_type"], "status": r["status"],
        "rolled_back": _bool(r["rolled_back"]), "confidence": r["confidence"], "duration_ms": r["duration_ms"],
        "source_updated_at": _ts(r["updated_at"]),
    }),
    Fact("fact_errors", "error_events", "event_id", "occurred_at", lambda r: {
        "event_id": r["event_id"], "occurred_at": _ts(r["occurred_at"]), "resolved_at": _ts(r["resolved_at"]),
        "component_key": _member("component", r["component_name"]), "tier_key": _member("tier", r["tier_id"]),
        "agent_key": _member("agent", r["agent_name"]), "error_type": r["error_type"], "severity": r["severity"],
        "auto_resolved": _bool(r["auto_resolved"]),
        "source_updated_at": _ts(r["updated_at"]),
    }),
    Fact("fact_approvals", "approval_requests", "approval_id", "requested_at", lambda r: {
        "approval_id": r["approval_id"], "requested_at": _ts(r["requested_at"]), "resolved_at": _ts(r["resolved_at"]),
        "status": r["status"], "agent_key": _member("agent", r["agent_name"]),
        "approver_key": _member("actor", r["approver_id"]), "tier_key": _member("tier", r["tier_id"]),
        "component_key": _member("component", r["component_name"]), "risk_score": r["risk_score"],
        "sla_seconds": r["sla_seconds"], "contract_id": r["contract_id"],
        "source_updated_at": _ts(r["updated_at"]),
    }),
    Fact("fact_missions", "missions", "mission_id", "started_at", lambda r: {
        "mission_id": r["mission_id"], "started_at": _ts(r["started_at"]), "completed_at": _ts(r["completed_at"]),
        "mission_key": _member("mission", r["mission_id"]), "mission_type": r["mission_type"], "status": r["status"],
        "source_updated_at": _ts(r["updated_at"]),
    }),
    Fact("fact_queries", "agent_queries", "query_id", "created_at", lambda r: {
        "query_id": r["query_id"], "created_at": _ts(r["created_at"]), "agent_key": _member("agent", r["agent_name"]),
        "conversation_id": r["conversation_id"], "user_key": _user_key(r["user_id"]), "latency_ms": r["latency_ms"],
        "approved": _bool(r["approved"]), "human_edited": _bool(r["human_edited"]),
        "error_occurred": _bool(r["error_occurred"]), "result_size_bytes": r["result_size_bytes"],
        "cost_usd": r["cost_usd"], "source_updated_at": _ts(r["updated_at"]),
    }),
    Fact("fact_feedback", "agent_feedback", "feedback_id", "created_at", lambda r: {
        "feedback_id": r["feedback_id"], "created_at": _ts(r["created_at"]), "annotated_at": _ts(r["annotated_at"]),
        "query_id": r["query_id"], "agent_key": _member("agent", r["agent_name"]),
        "annotator_key": _member("actor", r["annotator_id"]), "conversation_id": r["conversation_id"],
        "safe_to_send": _bool(r["safe_to_send"]), "clarity_score": r["clarity_score"],
        "accuracy_score": r["accuracy_score"], "tone_score": r["tone_score"],
        "labels": _json(r["labels"]), "source_updated_at": _ts(r["updated_at"]),
    }),
    Fact("fact_traces", "agent_traces", "trace_id", "created_at", lambda r: {
        "trace_id": r["trace_id"], "created_at": _ts(r["created_at"]), "user_key": _user_key(r["user_id"]),
        "agent_key": _member("agent", r["agent_name"]), "facet": r["facet"], "mode": r["mode"],
        "confidence": r["confidence"], "safety_level": r["safety_level"], "latency_ms": r["latency_ms"],
        "source_updated_at": _ts(r["updated_at"]),
    }),
]  # fmt: skip


@dataclass(frozen=True)
class Dim:
    table: str
    key: str
    natural: str
    source: str
    attributes: tuple[str, ...]
    historical: bool


DIMENSIONS = {
    "tier": Dim(
        "dim_tier", "tier_key", "tier_id", "autonomy_tiers", ("tier_name", "tier_level", "max_risk_score"), True
    ),
    "agent": Dim(
        "dim_agent",
        "agent_key",
        "agent_name",
        "agents",
        ("agent_type", "capabilities", "sla_target_seconds", "cost_per_query_usd"),
        True,
    ),
    "actor": Dim("dim_actor", "actor_key", "actor_id", "actors", ("actor_type", "display_name", "team"), False),
    "component": Dim("dim_component", "component_key", "component_name", "components", ("kernel",), False),
    "mission": Dim("dim_mission", "mission_key", "mission_id", "missions", ("mission_type", "status"), False),
}  # fmt: skip


def _rows(warehouse: str, table: str) -> list[Row]:
    engine = sa.create_engine(sync_warehouse_url(warehouse), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        rows = [dict(row) for row in connection.execute(sa.text(f"SELECT * FROM {table}")).mappings()]
    engine.dispose()
    return rows


@dataclass
class Loaded:
    source: dict[str, dict[str, Row]]
    """Source table -> natural key -> raw row, as the driver returns it."""
    warehouse: str

    def fact_rows(self, table: str, key: str) -> dict[str, Row]:
        return {row[key]: row for row in _rows(self.warehouse, table)}


def _read_source(url: str) -> dict[str, dict[str, Row]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    content: dict[str, dict[str, Row]] = {}
    with engine.connect() as connection:
        for table, key in [(fact.source, fact.key) for fact in FACTS] + [
            (d.source, d.natural) for d in DIMENSIONS.values()
        ]:
            rows = connection.execute(sa.text(f"SELECT * FROM {table}")).mappings().all()
            content[table] = {row[key]: dict(row) for row in rows}
    engine.dispose()
    return content


@pytest.fixture(
    scope="module", params=["sqlite-duckdb", "sqlite-postgresql", "postgresql-duckdb", "postgresql-postgresql"]
)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    source_kind, warehouse_kind = request.param.split("-")
    directory = tmp_path_factory.mktemp("reconciliation")
    pg_database = request.getfixturevalue("pg_database") if "postgresql" in request.param else None
    source = f"sqlite:///{directory / 'grace.sqlite'}" if source_kind == "sqlite" else pg_database()
    warehouse = f"duckdb:///{directory / 'warehouse.duckdb'}" if warehouse_kind == "duckdb" else pg_database()
    generate_demo_source(source, scale=SCALE)
    run_etl(source, warehouse, hash_key=HASH_KEY)
    advance_demo_source(source, step=1, scale=SCALE)
    run_etl(source, warehouse, hash_key=HASH_KEY)
    return Loaded(_read_source(source), warehouse)


class Members:
    """Surrogate key -> versions, per dimension, read from the warehouse."""

    def __init__(self, warehouse: str) -> None:
        self.versions: dict[str, dict[int, list[Row]]] = {}
        for name, dim in DIMENSIONS.items():
            by_key: dict[int, list[Row]] = {}
            for row in _rows(warehouse, dim.table):
                by_key.setdefault(row[dim.key], []).append(row)
            self.versions[name] = by_key

    def resolve(self, dimension: str, key: int | None, at: datetime) -> tuple[str | None, Row | None]:
        """The member's natural key and its version valid at ``at`` (exactly one must be)."""
        if key is None:
            return None, None
        versions = self.versions[dimension][key]
        natural = DIMENSIONS[dimension].natural
        assert len({version[natural] for version in versions}) == 1, f"{dimension} key {key} names several members"
        if not DIMENSIONS[dimension].historical:
            [version] = versions
            return version[natural], version
        valid = [v for v in versions if v["valid_from"] <= at < v["valid_to"]]
        assert len(valid) == 1, f"{dimension} key {key}: {len(valid)} versions valid at {at}"
        return valid[0][natural], valid[0]


def _assert_member_version(loaded: Loaded, dimension: str, natural: str, version: Row, at: datetime) -> None:
    """The version has the source's attributes if the fact happened after the member last changed; else it is older."""
    dim = DIMENSIONS[dimension]
    attributes = dim.attributes
    reference = loaded.source[dim.source].get(natural)
    if reference is None:
        assert version["is_inferred"] and all(version[a] is None for a in attributes), (dimension, natural)
        return
    changed_at = _ts(reference["updated_at"])
    if dim.historical and at < changed_at and not version["valid_to"] > changed_at:  # type: ignore[operator]
        return  # an earlier version, valid when the fact happened
    expected = {a: json.dumps(_json(reference[a])) if a == "capabilities" else reference[a] for a in attributes}
    assert {a: version[a] for a in attributes} == expected, (dimension, natural, at)


@pytest.mark.parametrize("fact", FACTS, ids=[fact.table for fact in FACTS])
def test_every_fact_column_reconciles_with_its_source_row(loaded: Loaded, fact: Fact) -> None:
    source = loaded.source[fact.source]
    stored = loaded.fact_rows(fact.table, fact.key)
    assert stored.keys() == source.keys()
    members = Members(loaded.warehouse)
    for natural, raw in source.items():
        expected = fact.expected(raw)
        actual = dict(stored[natural])
        if "labels" in actual:
            actual["labels"] = json.loads(actual["labels"])
        at = expected[fact.event_time]
        for column, value in expected.items():
            if isinstance(value, tuple):
                dimension, _ = value
                resolved, version = members.resolve(dimension, actual[column], at)
                actual[column] = (dimension, resolved)
                if version is not None:
                    _assert_member_version(loaded, dimension, resolved, version, at)  # type: ignore[arg-type]
        assert actual == expected, natural


def test_practice_bridge_reconciles_with_the_trace_steps(loaded: Loaded) -> None:
    traces = loaded.fact_rows("fact_traces", "trace_id")
    expected: dict[tuple[str, str], Row] = {}
    for trace_id, raw in loaded.source["agent_traces"].items():
        plan = _json(raw["trace"]).get("plan")
        steps = plan.get("steps") if isinstance(plan, dict) else None
        for step in steps if isinstance(steps, list) else ():
            if isinstance(step, dict) and step.get("kind") == "practice" and isinstance(step.get("detail"), str):
                fact = traces[trace_id]
                shared = {c: fact[c] for c in ("created_at", "agent_key", "user_key", "facet", "mode", "safety_level")}
                row = expected.setdefault((trace_id, step["detail"]), {"step_count": 0, **shared})
                row["step_count"] += 1
    bridge = {
        (row["trace_id"], row["practice"]): {c: v for c, v in row.items() if c not in ("trace_id", "practice")}
        for row in _rows(loaded.warehouse, "bridge_trace_practices")
    }
    assert expected, "the demo traces recommend no practice: this test proves nothing"
    assert bridge == expected
