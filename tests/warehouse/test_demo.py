"""The demo generator on real SQLite files and real PostgreSQL databases.

Each realism property the ETL and the metrics rely on is asserted so that it
fails if the generator stops producing it. The column contract below is
copied from sources.md on purpose (not read from ``warehouse.source``), so a
drift of either side shows here.
"""

from __future__ import annotations

import inspect
import json
import re
import statistics
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import warehouse.demo
from warehouse.demo import advance_demo_source, generate_demo_source
from warehouse.source import source_metadata

SCALE = 0.3
ANCHOR = datetime(2025, 11, 3, tzinfo=UTC)
BACKENDS = ["sqlite", "postgresql"]
Rows = dict[str, list[dict[str, Any]]]

T, I, R, B, TS, J = "text", "integer", "real", "boolean", "timestamp", "json"  # noqa: E741 (I is the integer kind)
CONTRACT: dict[str, dict[str, tuple[str, bool]]] = {  # table -> column -> (kind, nullable), from sources.md
    "autonomy_tiers": {
        "tier_id": (T, False),
        "tier_name": (T, False),
        "tier_level": (I, False),
        "max_risk_score": (R, False),
        "updated_at": (TS, False),
    },
    "agents": {
        "agent_name": (T, False),
        "agent_type": (T, False),
        "capabilities": (J, False),
        "sla_target_seconds": (I, False),
        "cost_per_query_usd": (R, False),
        "updated_at": (TS, False),
    },
    "actors": {
        "actor_id": (T, False),
        "actor_type": (T, False),
        "display_name": (T, False),
        "team": (T, True),
        "updated_at": (TS, False),
    },
    "components": {"component_name": (T, False), "kernel": (T, False), "updated_at": (TS, False)},
    "missions": {
        "mission_id": (T, False),
        "mission_type": (T, False),
        "status": (T, False),
        "started_at": (TS, False),
        "completed_at": (TS, True),
        "updated_at": (TS, False),
    },
    "action_contracts": {
        "contract_id": (T, False),
        "mission_id": (T, True),
        "action_type": (T, False),
        "component_name": (T, False),
        "tier_id": (T, False),
        "actor_id": (T, False),
        "agent_name": (T, True),
        "status": (T, False),
        "rolled_back": (B, False),
        "confidence": (R, True),
        "duration_ms": (I, True),
        "created_at": (TS, False),
        "completed_at": (TS, True),
        "updated_at": (TS, False),
    },
    "error_events": {
        "event_id": (T, False),
        "occurred_at": (TS, False),
        "component_name": (T, False),
        "tier_id": (T, True),
        "agent_name": (T, True),
        "error_type": (T, False),
        "severity": (T, False),
        "auto_resolved": (B, False),
        "resolved_at": (TS, True),
        "updated_at": (TS, False),
    },
    "approval_requests": {
        "approval_id": (T, False),
        "requested_at": (TS, False),
        "resolved_at": (TS, True),
        "status": (T, False),
        "agent_name": (T, True),
        "approver_id": (T, True),
        "tier_id": (T, False),
        "component_name": (T, False),
        "risk_score": (R, True),
        "sla_seconds": (I, False),
        "contract_id": (T, True),
        "updated_at": (TS, False),
    },
    "agent_queries": {
        "query_id": (T, False),
        "created_at": (TS, False),
        "agent_name": (T, False),
        "conversation_id": (T, False),
        "user_id": (T, False),
        "latency_ms": (I, False),
        "approved": (B, True),
        "human_edited": (B, False),
        "error_occurred": (B, False),
        "result_size_bytes": (I, True),
        "cost_usd": (R, False),
        "updated_at": (TS, False),
    },
    "agent_feedback": {
        "feedback_id": (T, False),
        "query_id": (T, True),
        "agent_name": (T, False),
        "conversation_id": (T, False),
        "annotator_id": (T, False),
        "created_at": (TS, False),
        "annotated_at": (TS, True),
        "safe_to_send": (B, True),
        "clarity_score": (I, True),
        "accuracy_score": (I, True),
        "tone_score": (I, True),
        "labels": (J, False),
        "updated_at": (TS, False),
    },
    "agent_traces": {
        "trace_id": (T, False),
        "created_at": (TS, False),
        "user_id": (T, False),
        "agent_name": (T, False),
        "facet": (T, True),
        "mode": (T, True),
        "confidence": (R, True),
        "safety_level": (T, False),
        "latency_ms": (I, False),
        "trace": (J, False),
        "updated_at": (TS, False),
    },
}
EVENT_TIME = {
    "missions": "started_at",
    "action_contracts": "created_at",
    "error_events": "occurred_at",
    "approval_requests": "requested_at",
    "agent_queries": "created_at",
    "agent_feedback": "created_at",
    "agent_traces": "created_at",
}
REFERENCES = [  # (fact table, column, referenced table, its key)
    ("action_contracts", "mission_id", "missions", "mission_id"),
    ("action_contracts", "component_name", "components", "component_name"),
    ("action_contracts", "tier_id", "autonomy_tiers", "tier_id"),
    ("action_contracts", "actor_id", "actors", "actor_id"),
    ("action_contracts", "agent_name", "agents", "agent_name"),
    ("error_events", "component_name", "components", "component_name"),
    ("error_events", "tier_id", "autonomy_tiers", "tier_id"),
    ("error_events", "agent_name", "agents", "agent_name"),
    ("approval_requests", "agent_name", "agents", "agent_name"),
    ("approval_requests", "approver_id", "actors", "actor_id"),
    ("approval_requests", "tier_id", "autonomy_tiers", "tier_id"),
    ("approval_requests", "component_name", "components", "component_name"),
    ("agent_queries", "agent_name", "agents", "agent_name"),
    ("agent_feedback", "agent_name", "agents", "agent_name"),
    ("agent_feedback", "annotator_id", "actors", "actor_id"),
    ("agent_traces", "agent_name", "agents", "agent_name"),
]
SQLITE_SPELLINGS = {
    "space, fraction": r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}",
    "T, fraction": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}",
    "+00:00": r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d{6})?\+00:00",
    "Z": r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d{6})?Z",
    "no fraction": r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(Z|\+00:00)?",
}


def instant(value: str | datetime) -> datetime:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parsed_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def read_rows(url: str) -> Rows:
    """Every row as the driver returns it (SQLite text and 0/1, PostgreSQL typed values), ordered by key."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        rows = {
            name: [dict(row) for row in connection.execute(sa.text(f"SELECT * FROM {name} ORDER BY 1")).mappings()]
            for name in CONTRACT
        }
    engine.dispose()
    return rows


def column(rows: Rows, table: str, name: str) -> list[Any]:
    return [row[name] for row in rows[table]]


def by_key(rows: Rows, table: str) -> dict[Any, dict[str, Any]]:
    key = next(iter(CONTRACT[table]))
    return {row[key]: row for row in rows[table]}


def new_url(kind: str, request: pytest.FixtureRequest, directory: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{directory / f'source-{uuid.uuid4().hex[:8]}.sqlite'}"
    return request.getfixturevalue("pg_database")()


@dataclass
class Snapshot:
    kind: str
    url: str
    counts: dict[str, int]
    rows: Rows
    progress: list[tuple[str, int, int]] = field(default_factory=list)


@pytest.fixture(scope="module", params=BACKENDS)
def snapshot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    url = new_url(request.param, request, tmp_path_factory.mktemp("snapshot"))
    calls: list[tuple[str, int, int]] = []
    counts = generate_demo_source(url, scale=SCALE, progress=lambda *call: calls.append(call))
    return Snapshot(request.param, url, counts, read_rows(url), calls)


@dataclass
class Advanced:
    url: str
    states: list[Rows]
    """The rows before step 1, after step 1 and after step 2."""
    counts: list[dict[str, int]]
    progress: list[list[tuple[str, int, int]]]


@pytest.fixture(scope="module", params=BACKENDS)
def advanced(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Advanced:
    url = new_url(request.param, request, tmp_path_factory.mktemp("advanced"))
    generate_demo_source(url, scale=SCALE)
    states, counts, progress = [read_rows(url)], [], []
    for step in (1, 2):
        calls: list[tuple[str, int, int]] = []
        counts.append(advance_demo_source(url, step=step, scale=SCALE, progress=lambda *call: calls.append(call)))  # noqa: B023 (called within the step)
        states.append(read_rows(url))
        progress.append(calls)
    return Advanced(url, states, counts, progress)


def period(step: int) -> tuple[datetime, datetime]:
    return ANCHOR + timedelta(days=step - 1), ANCHOR + timedelta(days=step)


def test_public_api() -> None:
    assert warehouse.demo.__all__ == ["advance_demo_source", "generate_demo_source"]
    for function in (generate_demo_source, advance_demo_source):
        parameters = inspect.signature(function).parameters
        assert [p.name for p in parameters.values() if p.kind is p.KEYWORD_ONLY] == [
            *(["step"] if function is advance_demo_source else []),
            "seed",
            "scale",
            "anchor",
            "progress",
        ]


def test_every_column_of_the_contract_exists_with_its_nullability(snapshot: Snapshot) -> None:
    inspector = sa.inspect(sa.create_engine(snapshot.url, poolclass=sa.pool.NullPool))
    for table, columns in CONTRACT.items():
        found = {c["name"]: c["nullable"] for c in inspector.get_columns(table)}
        assert found == {name: nullable for name, (_, nullable) in columns.items()}, table


def test_values_are_stored_the_way_each_backend_stores_them(snapshot: Snapshot) -> None:
    """SQLite: ISO text in every allowed spelling, 0/1, JSON text. PostgreSQL: timestamptz, boolean, json."""
    spellings: Counter[str] = Counter()
    for table, columns in CONTRACT.items():
        for name, (kind, _) in columns.items():
            values = [v for v in column(snapshot.rows, table, name) if v is not None]
            if snapshot.kind == "postgresql":
                expected = {TS: datetime, B: bool, J: (list, dict)}.get(kind, object)
                assert all(isinstance(v, expected) for v in values), (table, name)
                assert kind != TS or all(v.tzinfo is not None for v in values), (table, name)
            elif kind == TS:
                for value in values:
                    matched = [label for label, pattern in SQLITE_SPELLINGS.items() if re.fullmatch(pattern, value)]
                    assert matched, (table, name, value)
                    spellings[matched[0]] += 1
            elif kind == B:
                assert set(values) <= {0, 1}, (table, name)
            elif kind == J:
                assert all(isinstance(parsed_json(v), (list, dict)) for v in values), (table, name)
    if snapshot.kind == "sqlite":
        assert set(spellings) == set(SQLITE_SPELLINGS)
        assert spellings["space, fraction"] > 0.7 * sum(spellings.values())


def test_sizes_follow_the_scale_and_progress_reaches_every_total(snapshot: Snapshot) -> None:
    size = {table: len(rows) for table, rows in snapshot.rows.items()}
    assert snapshot.counts == size
    contracts = size["action_contracts"]
    assert contracts == round(20_000 * SCALE)
    for table, share in [
        ("error_events", 1 / 4),
        ("approval_requests", 1 / 8),
        ("missions", 1 / 20),
        ("agent_queries", 1 / 2),
        ("agent_traces", 1 / 3),
    ]:
        assert size[table] == pytest.approx(contracts * share, rel=0.1), table
    assert size["agent_feedback"] == pytest.approx(size["agent_queries"] / 10, rel=0.1)
    final = {table: (done, total) for table, done, total in snapshot.progress}
    assert final == {table: (rows, rows) for table, rows in size.items()}
    assert all(done <= total for _, done, total in snapshot.progress)


def test_reference_tables_hold_a_realistic_cast(snapshot: Snapshot) -> None:
    rows = snapshot.rows
    tiers = [(r["tier_id"], r["tier_name"], r["tier_level"], r["max_risk_score"]) for r in rows["autonomy_tiers"]]
    assert [t[:3] for t in tiers] == [
        ("tier_0", "Observe", 0),
        ("tier_1", "Assist", 1),
        ("tier_2", "Operational", 2),
        ("tier_3", "Autonomous", 3),
    ]
    risks = [t[3] for t in tiers]
    assert risks == sorted(risks) and len(set(risks)) == 4 and risks[0] > 0 and risks[-1] <= 1
    assert len(rows["agents"]) == 12
    assert set(column(rows, "agents", "agent_type")) == {"data", "engineer", "support", "marketing", "ai", "qa", "ops"}
    for capabilities in column(rows, "agents", "capabilities"):
        assert parsed_json(capabilities) and all(isinstance(c, str) for c in parsed_json(capabilities))
    assert 35 <= len(rows["actors"]) <= 45
    assert set(column(rows, "actors", "actor_type")) == {"human", "system", "agent"}
    human_teams = [r["team"] for r in rows["actors"] if r["actor_type"] == "human"]
    assert None in human_teams and len(set(human_teams)) > 4
    assert len(rows["components"]) >= 25
    assert set(column(rows, "components", "kernel")) == {
        "core",
        "ingress",
        "intelligence",
        "learning",
        "memory",
        "orchestration",
        "resilience",
        "mlt",
        "mldl",
        "communications",
    }
    assert len(set(column(rows, "missions", "mission_type"))) >= 5


def test_nullable_columns_hold_nulls_and_values_the_others_never_null(snapshot: Snapshot) -> None:
    for table, columns in CONTRACT.items():
        for name, (_, nullable) in columns.items():
            nulls = sum(value is None for value in column(snapshot.rows, table, name))
            if nullable:
                assert 0 < nulls < len(snapshot.rows[table]), (table, name, nulls)
            else:
                assert nulls == 0, (table, name)


def test_events_reference_unknown_members_now_and_then(snapshot: Snapshot) -> None:
    for fact, name, reference, key in REFERENCES:
        known = set(column(snapshot.rows, reference, key))
        values = [v for v in column(snapshot.rows, fact, name) if v is not None]
        unknown = [v for v in values if v not in known]
        assert 0 < len(unknown) < 0.05 * len(values), (fact, name, len(unknown))
    queries = set(column(snapshot.rows, "agent_queries", "query_id"))
    assert {q for q in column(snapshot.rows, "agent_feedback", "query_id") if q is not None} <= queries
    contracts = set(column(snapshot.rows, "action_contracts", "contract_id"))
    assert {c for c in column(snapshot.rows, "approval_requests", "contract_id") if c is not None} <= contracts


def test_statuses_mix_like_a_live_system(snapshot: Snapshot) -> None:
    rows = snapshot.rows
    contracts = Counter(column(rows, "action_contracts", "status"))
    assert set(contracts) == {"pending", "verified", "failed"} and contracts["verified"] > 0.8 * sum(contracts.values())
    for row in rows["action_contracts"]:
        assert (row["status"] == "pending") == (row["completed_at"] is None)
        assert not (row["status"] == "pending" and row["rolled_back"])
    rolled_back = sum(bool(r) for r in column(rows, "action_contracts", "rolled_back"))
    assert 0 < rolled_back < 0.1 * len(rows["action_contracts"])

    approvals = rows["approval_requests"]
    assert set(column(rows, "approval_requests", "status")) == {"pending", "approved", "rejected", "expired"}
    assert all(r["resolved_at"] is None and r["approver_id"] is None for r in approvals if r["status"] == "pending")
    decided = [r for r in approvals if r["status"] in ("approved", "rejected")]
    timed = [r for r in decided if r["resolved_at"] is not None]
    late = [
        r for r in timed if (instant(r["resolved_at"]) - instant(r["requested_at"])).total_seconds() > r["sla_seconds"]
    ]
    assert 0 < len(late) < len(timed) < len(decided)

    errors = rows["error_events"]
    assert 0 < sum(r["resolved_at"] is None for r in errors) < len(errors)
    assert all(r["resolved_at"] is not None for r in errors if r["auto_resolved"])
    assert 0 < sum(bool(r["auto_resolved"]) for r in errors) < len(errors)

    assert set(column(rows, "missions", "status")) == {"running", "completed", "failed", "cancelled"}
    assert all(r["completed_at"] is None for r in rows["missions"] if r["status"] == "running")
    assert all(r["completed_at"] is not None for r in rows["missions"] if r["status"] == "completed")
    linked = Counter(m for m in column(rows, "action_contracts", "mission_id") if m is not None)
    assert sum(linked.values()) / len(linked) >= 3


def test_updated_at_follows_each_row(snapshot: Snapshot) -> None:
    for table, event_time in EVENT_TIME.items():
        for row in snapshot.rows[table]:
            updated = instant(row["updated_at"])
            assert instant(row[event_time]) <= updated <= ANCHOR, (table, row)
    for row in snapshot.rows["action_contracts"]:
        if row["completed_at"] is not None:
            assert timedelta(0) <= instant(row["updated_at"]) - instant(row["completed_at"]) < timedelta(seconds=3)
    for row in snapshot.rows["approval_requests"]:
        if row["resolved_at"] is not None:
            assert instant(row["resolved_at"]) <= instant(row["updated_at"])


def test_volume_follows_weekdays_and_business_hours(snapshot: Snapshot) -> None:
    created = [instant(v) for v in column(snapshot.rows, "action_contracts", "created_at")]
    assert ANCHOR - timedelta(days=28) <= min(created) and max(created) < ANCHOR
    per_day = Counter(t.date() for t in created)
    weekday = statistics.mean(n for day, n in per_day.items() if day.weekday() < 5)
    weekend = statistics.mean(n for day, n in per_day.items() if day.weekday() >= 5)
    assert weekday > 2 * weekend
    business = sum(t.weekday() < 5 and 9 <= t.hour < 18 for t in created)
    assert business > 0.5 * len(created)


def test_durations_have_long_tails(snapshot: Snapshot) -> None:
    for table, name in [
        ("action_contracts", "duration_ms"),
        ("agent_queries", "latency_ms"),
        ("agent_traces", "latency_ms"),
    ]:
        values = sorted(v for v in column(snapshot.rows, table, name) if v is not None)
        assert values[int(0.99 * len(values))] > 5 * values[len(values) // 2], (table, name)
    for table in ("action_contracts", "agent_traces"):
        assert all(0 <= v <= 1 for v in column(snapshot.rows, table, "confidence") if v is not None)


def test_traces_and_feedback_carry_the_json_the_metrics_read(snapshot: Snapshot) -> None:
    documents = [parsed_json(v) for v in column(snapshot.rows, "agent_traces", "trace")]
    practices = [[s["detail"] for s in d["plan"]["steps"] if s["kind"] == "practice"] for d in documents if "plan" in d]
    assert sum("plan" not in d for d in documents) > 0
    assert sum(not p for p in practices) > 0
    assert sum(len(p) != len(set(p)) for p in practices) > 0
    assert 8 <= len({name for p in practices for name in p}) <= 12
    assert sum("rules" not in d for d in documents) > 0 and sum("inference" not in d for d in documents) > 0
    labels = [parsed_json(v) for v in column(snapshot.rows, "agent_feedback", "labels")]
    assert all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in labels)
    assert any(v == [] for v in labels) and any(len(v) > 1 for v in labels)
    users = column(snapshot.rows, "agent_queries", "user_id") + column(snapshot.rows, "agent_traces", "user_id")
    assert all(re.fullmatch(r"user_\d{5}", u) for u in users)
    assert 100 <= len(set(users)) <= 1000
    scores = {
        v
        for name in ("clarity_score", "accuracy_score", "tone_score")
        for v in column(snapshot.rows, "agent_feedback", name)
    }
    assert scores == {None, 1, 2, 3, 4, 5}


def test_the_same_seed_gives_the_same_rows_and_another_seed_does_not(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    url = new_url(kind, request, tmp_path)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    contents = []
    for seed in (11, 11, 12):
        generate_demo_source(url, seed=seed, scale=0.05)
        advance_demo_source(url, step=1, seed=seed, scale=0.05)
        contents.append(read_rows(url))
        source_metadata.drop_all(engine)
    engine.dispose()
    assert contents[0] == contents[1]
    assert contents[0]["action_contracts"] != contents[2]["action_contracts"]


def test_anchor_moves_the_window_and_misuse_is_refused(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    url = new_url(kind, request, tmp_path)
    anchor = datetime(2024, 3, 1, 12, tzinfo=UTC)
    generate_demo_source(url, scale=0.02, anchor=anchor)
    created = [instant(v) for v in column(read_rows(url), "action_contracts", "created_at")]
    assert anchor - timedelta(days=28) <= min(created) and max(created) < anchor
    with pytest.raises(ValueError, match="already holds rows"):
        generate_demo_source(url, scale=0.02, anchor=anchor)
    advance_demo_source(url, step=1, scale=0.02, anchor=anchor)
    with pytest.raises(ValueError, match="run each step once, in order"):
        advance_demo_source(url, step=1, scale=0.02, anchor=anchor)
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_demo_source(url, anchor=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="scale must be positive"):
        generate_demo_source(url, scale=0)
    with pytest.raises(ValueError, match="step counts from 1"):
        advance_demo_source(url, step=0)
    with pytest.raises(ValueError, match="not a demo source"):
        advance_demo_source(f"sqlite:///{tmp_path / 'empty.sqlite'}", step=1)


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def changed_rows(
    before: Rows, after: Rows, table: str
) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Rows new in ``after``, and (old, new) pairs of rows whose content changed."""
    old, new = by_key(before, table), by_key(after, table)
    assert old.keys() <= new.keys(), f"{table}: rows were deleted"
    return [row for key, row in new.items() if key not in old], [(old[k], new[k]) for k in old if old[k] != new[k]]


def test_advance_counts_what_it_inserts_and_updates(advanced: Advanced) -> None:
    for step, counts in enumerate(advanced.counts, start=1):
        final = {table: (done, total) for table, done, total in advanced.progress[step - 1]}
        assert final == {table: (rows, rows) for table, rows in counts.items() if rows}
        before, after = advanced.states[step - 1], advanced.states[step]
        for table in CONTRACT:
            inserted, updated = changed_rows(before, after, table)
            assert counts[table] == len(inserted) + len(updated), (step, table)
            start, end = period(step)
            assert all(instant(b["updated_at"]) < instant(a["updated_at"]) for b, a in updated), (step, table)
            assert all(start <= instant(a["updated_at"]) < end for _, a in updated), (step, table)


def test_advance_moves_open_rows_on(advanced: Advanced) -> None:
    before, after = advanced.states[0], advanced.states[1]
    for table, open_status, moved_to in [
        ("action_contracts", "pending", {"verified", "failed"}),
        ("approval_requests", "pending", {"approved", "rejected", "expired"}),
        ("missions", "running", {"completed", "failed", "cancelled"}),
    ]:
        _, updated = changed_rows(before, after, table)
        statuses = {(b["status"], a["status"]) for b, a in updated}
        assert {b for b, _ in statuses} == {open_status} and {a for _, a in statuses} <= moved_to, table
    _, errors = changed_rows(before, after, "error_events")
    assert errors and all(b["resolved_at"] is None and a["resolved_at"] is not None for b, a in errors)
    assert "pending" in column(after, "action_contracts", "status"), "some pending contracts stay pending"


def test_advance_changes_history_inside_the_period(advanced: Advanced) -> None:
    tiers = [by_key(state, "autonomy_tiers") for state in advanced.states]
    assert tiers[1]["tier_2"]["tier_name"] == "Operational+" and tiers[0]["tier_2"]["tier_name"] == "Operational"
    assert period(1)[0] <= instant(tiers[1]["tier_2"]["updated_at"]) < period(1)[1]
    assert tiers[2]["tier_3"]["max_risk_score"] < tiers[1]["tier_3"]["max_risk_score"]
    for step in (1, 2):
        _, updated = changed_rows(advanced.states[step - 1], advanced.states[step], "agents")
        ((old, new),) = updated
        assert old["agent_type"] != new["agent_type"]
        assert set(parsed_json(old["capabilities"])) < set(parsed_json(new["capabilities"]))


def test_advance_registers_members_that_facts_referenced_before(advanced: Advanced) -> None:
    appeared: dict[str, set[str]] = {}
    for step in (1, 2):
        before, after = advanced.states[step - 1], advanced.states[step]
        for fact, name, reference, key in REFERENCES:
            new = {row[key] for row in changed_rows(before, after, reference)[0]}
            appeared.setdefault(reference, set()).update(new & set(column(before, fact, name)))
    assert all(appeared[table] for table in ("agents", "actors", "components", "missions")), appeared


def test_advance_writes_late_commits_and_late_arrivals(advanced: Advanced) -> None:
    for step in (1, 2):
        before, after = advanced.states[step - 1], advanced.states[step]
        start, _ = period(step)
        for table in ("action_contracts", "error_events", "agent_queries", "agent_traces"):
            newest = max(instant(v) for v in column(before, table, "updated_at"))
            inserted, _ = changed_rows(before, after, table)
            late = [instant(r["updated_at"]) for r in inserted if instant(r["updated_at"]) < newest]
            assert late and all(newest - timedelta(minutes=5) < t <= newest - timedelta(minutes=1) for t in late), (
                step,
                table,
            )
        for table in ("action_contracts", "error_events", "agent_queries"):
            inserted, _ = changed_rows(before, after, table)
            arrivals = [r for r in inserted if instant(r[EVENT_TIME[table]]) < start - timedelta(days=1)]
            assert arrivals and all(instant(r["updated_at"]) >= start for r in arrivals), (step, table)
            in_period = [r for r in inserted if instant(r[EVENT_TIME[table]]) >= start]
            assert len(in_period) > 0.8 * len(inserted), (step, table)
