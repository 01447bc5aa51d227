"""The nothing-new probe: a table is skipped only when the warehouse holds every re-read row at least as new.

Each case changes a row so that only its key and stamp say so, inside the
late-commit overlap and at or below the watermark, where a probe that
compared less than key and stamp would wrongly call the table unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from tests.warehouse.conftest import query
from tests.warehouse.sourcedb import T0, SourceDB
from warehouse.etl import EtlResult

Load = Callable[[], EtlResult]
NEWEST = T0 + timedelta(hours=2)
"""The newest stamp of the first load: its watermark."""


def _stats(result: EtlResult, table: str) -> tuple[int, int, int]:
    [stats] = [s for s in result.tables if s.source_table == table]
    return stats.rows_read, stats.rows_inserted, stats.rows_updated


def _seed(source: SourceDB) -> None:
    source.insert(
        "action_contracts",
        {"contract_id": "old", "created_at": T0, "updated_at": NEWEST - timedelta(minutes=3), "status": "pending"},
        {"contract_id": "newest", "created_at": T0, "updated_at": NEWEST},
    )
    source.insert("agents", {"agent_name": "bot", "agent_type": "data", "updated_at": NEWEST - timedelta(minutes=3)})
    source.insert("actors", {"actor_id": "alice", "team": "ops", "updated_at": NEWEST - timedelta(minutes=3)})


def test_a_run_with_nothing_new_reads_the_overlap_and_changes_nothing(source: SourceDB, load: Load) -> None:
    _seed(source)
    load()
    again = load()
    assert _stats(again, "action_contracts") == (2, 0, 0)
    assert _stats(again, "agents") == (1, 0, 0)
    assert all(stats.rows_inserted == stats.rows_updated == 0 for stats in again.tables)


def test_a_late_update_below_the_watermark_is_applied(source: SourceDB, warehouse: str, load: Load) -> None:
    """A long transaction commits an update stamped after the stored version but before the watermark."""
    _seed(source)
    load()
    late = NEWEST - timedelta(minutes=1)
    source.update("action_contracts", "old", status="verified", updated_at=late)
    source.update("agents", "bot", agent_type="ops", updated_at=late)
    source.update("actors", "alice", team="sre", updated_at=late)
    result = load()
    assert _stats(result, "action_contracts") == (2, 0, 1)
    assert query(warehouse, "SELECT status FROM fact_verifications WHERE contract_id = 'old'") == [("verified",)]
    assert query(warehouse, "SELECT agent_type FROM dim_agent WHERE is_current") == [("ops",)]
    assert query(warehouse, "SELECT team FROM dim_actor WHERE actor_id = 'alice'") == [("sre",)]


def test_a_late_insert_below_the_watermark_is_loaded(source: SourceDB, warehouse: str, load: Load) -> None:
    _seed(source)
    load()
    source.insert("action_contracts", {"contract_id": "late", "created_at": T0, "updated_at": NEWEST})
    assert _stats(load(), "action_contracts") == (3, 1, 0)
    assert query(warehouse, "SELECT count(*) FROM fact_verifications") == [(3,)]
