"""The ETL end to end, on every source x warehouse pair: loading, reloading, updates, bad input."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from metrics import MetricsClient
from tests.warehouse.conftest import HASH_KEY, query, snapshot
from tests.warehouse.sourcedb import T0, SourceDB
from warehouse.connections import warehouse_url
from warehouse.errors import BadSourceValue, HashKeyError, SourceContractError, SourceUnavailable, UnsupportedURL
from warehouse.etl import EtlResult, run_etl
from warehouse.schema import create_schema

Load = Callable[[], EtlResult]


def _stats(result: EtlResult) -> dict[str, tuple[int, int, int]]:
    return {t.source_table: (t.rows_read, t.rows_inserted, t.rows_updated) for t in result.tables if t.rows_read}


def _seed(source: SourceDB) -> None:
    source.insert("autonomy_tiers", {"tier_id": "tier_0", "updated_at": T0})
    source.insert("actors", {"actor_id": "alice", "updated_at": T0})
    source.insert("components", {"component_name": "api", "kernel": "ingress", "updated_at": T0})
    source.insert(
        "action_contracts",
        {"contract_id": "c1", "created_at": T0, "status": "pending", "updated_at": T0, "confidence": 0.25},
        {"contract_id": "c2", "created_at": T0, "status": "verified", "duration_ms": 1200, "updated_at": T0},
    )


def test_initial_load_of_hand_written_rows(source: SourceDB, warehouse: str, load: Load) -> None:
    _seed(source)
    source.insert(
        "approval_requests",
        {
            "approval_id": "a1",
            "requested_at": T0,
            "resolved_at": T0 + timedelta(seconds=90.5),
            "status": "approved",
            "approver_id": "alice",
            "risk_score": 0.4,
            "updated_at": T0,
        },
    )
    source.insert(
        "agent_feedback",
        {"feedback_id": "f1", "created_at": T0, "clarity_score": 5, "tone_score": 3, "labels": ["x"], "updated_at": T0},
    )
    assert _stats(load()) == {
        "autonomy_tiers": (1, 1, 0),
        "actors": (1, 1, 0),
        "components": (1, 1, 0),
        "action_contracts": (2, 2, 0),
        "approval_requests": (1, 1, 0),
        "agent_feedback": (1, 1, 0),
    }
    assert query(
        warehouse,
        "SELECT contract_id, created_at, status, confidence, duration_ms, c.kernel, t.tier_name, a.actor_id "
        "FROM fact_verifications f JOIN dim_component c USING (component_key) JOIN dim_tier t USING (tier_key) "
        "JOIN dim_actor a USING (actor_key) ORDER BY contract_id",
    ) == [
        ("c1", T0, "pending", 0.25, None, "ingress", "Observe", "alice"),
        ("c2", T0, "verified", None, 1200, "ingress", "Observe", "alice"),
    ]
    assert query(warehouse, "SELECT requested_at, resolved_at, risk_score, status FROM fact_approvals") == [
        (T0, T0 + timedelta(seconds=90.5), 0.4, "approved")
    ]
    assert query(warehouse, "SELECT clarity_score, accuracy_score, tone_score, labels FROM fact_feedback") == [
        (5, None, 3, '["x"]')
    ]


RETIRED = {
    "fact_errors": "time_to_resolve_s",
    "fact_approvals": "latency_s",
    "fact_missions": "duration_s",
    "fact_feedback": "overall_score",
}
"""Columns that stored durations and scores before the metrics layer computed them from raw columns."""


def test_a_warehouse_that_still_has_the_retired_columns_keeps_working(
    source: SourceDB, warehouse: str, load: Load
) -> None:
    engine = sa.create_engine(warehouse_url(warehouse), poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        create_schema(connection)
        for table, column in RETIRED.items():
            connection.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} DOUBLE PRECISION"))
    engine.dispose()
    source.insert(
        "approval_requests",
        {
            "approval_id": "a1",
            "requested_at": T0,
            "resolved_at": T0 + timedelta(seconds=90.5),
            "status": "approved",
            "updated_at": T0,
        },
    )
    load()
    load()
    with MetricsClient(warehouse) as client:
        assert client.query(["approval_count", "avg_approval_latency_s"]).to_pylist() == [
            {"approval_count": 1, "avg_approval_latency_s": 90.5}
        ]
    assert query(warehouse, "SELECT latency_s FROM fact_approvals") == [(None,)]


def test_rerun_changes_nothing(source: SourceDB, warehouse: str, load: Load) -> None:
    _seed(source)
    load()
    before = snapshot(warehouse)
    again = load()
    assert all(stats.rows_inserted == stats.rows_updated == 0 for stats in again.tables)
    assert snapshot(warehouse) == before


def test_second_run_applies_exactly_the_updates(source: SourceDB, warehouse: str, load: Load) -> None:
    _seed(source)
    load()
    later = T0 + timedelta(hours=1)
    source.update("action_contracts", "c1", status="verified", duration_ms=300, updated_at=later)
    source.insert("action_contracts", {"contract_id": "c3", "created_at": later, "updated_at": later})
    # c2 is read again (it lies within the late-commit overlap) but changes nothing.
    assert _stats(load())["action_contracts"] == (3, 1, 1)
    assert query(warehouse, "SELECT contract_id, status, duration_ms FROM fact_verifications ORDER BY 1") == [
        ("c1", "verified", 300),
        ("c2", "verified", 1200),
        ("c3", "verified", None),
    ]


def test_late_committed_row_is_not_missed(source: SourceDB, warehouse: str, load: Load) -> None:
    _seed(source)
    newest = T0 + timedelta(hours=2)
    source.insert("action_contracts", {"contract_id": "c3", "created_at": newest, "updated_at": newest})
    load()
    # A long transaction commits a row stamped 4m59s before rows that were already loaded.
    late = newest - timedelta(minutes=4, seconds=59)
    source.insert("action_contracts", {"contract_id": "late", "created_at": late, "updated_at": late})
    assert _stats(load())["action_contracts"][1] == 1
    assert query(warehouse, "SELECT count(*) FROM fact_verifications WHERE contract_id = 'late'") == [(1,)]


def test_late_arriving_event_lands_in_its_past_period(source: SourceDB, warehouse: str, load: Load) -> None:
    _seed(source)
    load()
    long_ago = T0 - timedelta(days=40)
    source.insert(
        "action_contracts", {"contract_id": "old", "created_at": long_ago, "updated_at": T0 + timedelta(hours=1)}
    )
    load()
    assert query(warehouse, "SELECT created_at FROM fact_verifications WHERE contract_id = 'old'") == [(long_ago,)]


def test_null_reference_gives_the_null_member(source: SourceDB, warehouse: str, load: Load) -> None:
    _seed(source)
    load()
    assert query(warehouse, "SELECT agent_key, mission_key FROM fact_verifications WHERE contract_id = 'c1'") == [
        (None, None)
    ]


def test_traces_bridge_one_row_per_recommended_practice(source: SourceDB, warehouse: str, load: Load) -> None:
    steps = [
        {"kind": "practice", "detail": "least-privilege"},
        {"kind": "lookup", "detail": "docs"},
        {"kind": "practice", "detail": "least-privilege"},
        {"kind": "practice", "detail": "dry-run"},
    ]
    source.insert(
        "agent_traces",
        {"trace_id": "t1", "created_at": T0, "trace": {"plan": {"steps": steps}}, "updated_at": T0},
        {"trace_id": "t2", "created_at": T0, "trace": {"rules": {"fired": []}}, "updated_at": T0},
        {"trace_id": "t3", "created_at": T0, "trace": {"plan": {"steps": "not a list"}}, "updated_at": T0},
    )
    load()
    assert query(warehouse, "SELECT trace_id, practice, step_count FROM bridge_trace_practices ORDER BY 1, 2") == [
        ("t1", "dry-run", 1),
        ("t1", "least-privilege", 2),
    ]
    source.update("agent_traces", "t1", trace={"plan": {"steps": steps[:1]}}, updated_at=T0 + timedelta(hours=1))
    load()
    assert query(warehouse, "SELECT trace_id, practice, step_count FROM bridge_trace_practices") == [
        ("t1", "least-privilege", 1)
    ]
    assert query(warehouse, "SELECT count(*) FROM fact_traces") == [(3,)]


def test_user_ids_are_stored_only_as_keyed_hashes(source: SourceDB, warehouse: str, load: Load) -> None:
    source.insert("agent_queries", {"query_id": "q1", "created_at": T0, "user_id": "user-42", "updated_at": T0})
    load()
    [(stored,)] = query(warehouse, "SELECT user_key FROM fact_queries")
    assert "user-42" not in stored
    assert stored != hashlib.sha256(b"user-42").hexdigest() != hashlib.md5(b"user-42").hexdigest()
    with pytest.raises(HashKeyError, match="GRACE_METRICS_HASH_KEY"):
        run_etl(source.url, warehouse, hash_key=HASH_KEY + "-other")


@pytest.mark.parametrize("source", ["sqlite"], indirect=True)  # timestamptz cannot hold a bad value
def test_unparseable_timestamp_is_named_and_changes_nothing(source: SourceDB, warehouse: str, load: Load) -> None:
    _seed(source)
    load()
    before = snapshot(warehouse)
    source.insert("action_contracts", {"contract_id": "ok", "created_at": T0, "updated_at": T0 + timedelta(hours=1)})
    source.execute(
        "INSERT INTO action_contracts (contract_id, action_type, component_name, tier_id, actor_id, status, "
        "rolled_back, created_at, updated_at) VALUES ('bad', 'x', 'api', 'tier_0', 'alice', 'verified', 0, "
        "'yesterday', '2025-11-03 12:00:00')"
    )
    with pytest.raises(BadSourceValue) as error:
        load()
    assert "action_contracts row 'bad': column created_at holds 'yesterday'" in str(error.value)
    assert snapshot(warehouse) == before
    [(status, message)] = query(warehouse, "SELECT status, error FROM etl_runs WHERE status <> 'succeeded'")
    assert status == "failed" and "yesterday" in message


def test_missing_tables_and_columns_are_all_named(source: SourceDB, warehouse: str) -> None:
    source.execute("DROP TABLE agent_feedback")
    source.execute("ALTER TABLE agents DROP COLUMN capabilities")
    source.execute("ALTER TABLE missions ADD COLUMN extra_column TEXT")
    with pytest.raises(SourceContractError) as error:
        run_etl(source.url, warehouse, hash_key=HASH_KEY)
    assert error.value.problems == ["table agents has no column capabilities", "table agent_feedback is missing"]


@pytest.mark.parametrize(
    ("source_url", "error", "message"),
    [
        ("sqlite:////nonexistent/grace.sqlite", SourceUnavailable, "does not exist"),
        ("postgresql://nobody@127.0.0.1:1/none", SourceUnavailable, "cannot read the source"),
        ("mysql://root@localhost/grace", UnsupportedURL, "source URL"),
        ("not a url", UnsupportedURL, "source URL"),
    ],
)
def test_bad_source_urls(source_url: str, error: type[Exception], message: str, tmp_path: object) -> None:
    with pytest.raises(error, match=message):
        run_etl(source_url, f"duckdb:///{tmp_path}/w.duckdb", hash_key=HASH_KEY)


def test_unsupported_warehouse_url(source: SourceDB) -> None:
    with pytest.raises(UnsupportedURL, match=r"warehouse URL 'sqlite:///w\.db' is not supported"):
        run_etl(source.url, "sqlite:///w.db", hash_key=HASH_KEY)


def test_mission_counts_follow_its_fact_not_its_inferred_member(source: SourceDB, warehouse: str, load: Load) -> None:
    """A contract infers mission m1; when m1 arrives its member is filled in, but its fact row is new: an insert."""
    _seed(source)
    source.update("action_contracts", "c1", mission_id="m1", updated_at=T0)
    load()
    source.insert("missions", {"mission_id": "m1", "started_at": T0, "updated_at": T0 + timedelta(hours=1)})
    assert _stats(load())["missions"] == (1, 1, 0)
    source.update(
        "missions", "m1", status="completed", completed_at=T0 + timedelta(hours=2), updated_at=T0 + timedelta(hours=2)
    )
    assert _stats(load())["missions"] == (1, 0, 1)
    assert query(warehouse, "SELECT mission_id, status, completed_at FROM fact_missions") == [
        ("m1", "completed", T0 + timedelta(hours=2))
    ]
