"""Bad source values: each is named (table, key, column, value) as ``BadSourceValue`` and the warehouse is unchanged.

SQLite is dynamically typed, so any column can hold text; a source that
enforces no constraints can hold NULL anywhere. Both must stop the run with a
message a person can act on, never fail later in the bulk loaders. A failed
run still leaves its run-log row: status, error and the counts it gathered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.warehouse.conftest import query, snapshot
from tests.warehouse.sourcedb import T0, SourceDB
from warehouse.errors import BadSourceValue
from warehouse.etl import EtlResult
from warehouse.etl.loads import LOADS

Load = Callable[[], EtlResult]
LATER = T0 + timedelta(hours=1)

NULL_CASES = [
    pytest.param(
        "agent_queries", {"query_id": "q2", "created_at": T0, "updated_at": None}, "q2", "updated_at", id="updated_at"
    ),
    pytest.param(
        "agent_queries", {"query_id": None, "created_at": T0, "updated_at": LATER}, None, "query_id", id="natural-key"
    ),
    pytest.param(
        "error_events",
        {"event_id": "e2", "occurred_at": None, "updated_at": LATER},
        "e2",
        "occurred_at",
        id="event-time",
    ),
    pytest.param(
        "agent_traces",
        {"trace_id": "t2", "created_at": T0, "user_id": None, "updated_at": LATER},
        "t2",
        "user_id",
        id="text",
    ),
    pytest.param(
        "agent_queries",
        {"query_id": "q2", "created_at": T0, "latency_ms": None, "updated_at": LATER},
        "q2",
        "latency_ms",
        id="integer",
    ),
]
"""(table, bad row, its key, the column at fault): NULL where sources.md says the column is never NULL."""

TYPE_CASES = [
    pytest.param("agent_queries", "latency_ms", "fast", id="text-in-integer"),
    pytest.param("agent_queries", "latency_ms", 2.5, id="fraction-in-integer"),
    pytest.param("agent_queries", "result_size_bytes", "big", id="text-in-nullable-integer"),
    pytest.param("agent_queries", "cost_usd", "cheap", id="text-in-real"),
    pytest.param("agent_feedback", "clarity_score", "5 stars", id="text-in-score"),
    pytest.param("action_contracts", "rolled_back", 2, id="boolean"),
    pytest.param("action_contracts", "created_at", "yesterday", id="timestamp"),
    pytest.param("agent_traces", "trace", "{not json", id="json"),
]
"""(table, column, value): values SQLite stores as given whatever the column's type."""

_KEYS = {
    "agent_queries": "query_id",
    "agent_feedback": "feedback_id",
    "action_contracts": "contract_id",
    "agent_traces": "trace_id",
}


def _good_rows(source: SourceDB) -> None:
    source.insert("agent_queries", {"query_id": "q1", "created_at": T0, "updated_at": T0})
    source.insert("error_events", {"event_id": "e1", "occurred_at": T0, "updated_at": T0})
    source.insert("agent_traces", {"trace_id": "t1", "created_at": T0, "updated_at": T0})


def _assert_failed_cleanly(warehouse: str, load: Load, table: str, key: Any, column: str, value: Any) -> None:
    """The run raises naming the row; the warehouse and its watermarks are as before; the run log says why."""
    before = snapshot(warehouse)
    marks = query(warehouse, "SELECT source_table, watermark FROM etl_watermarks ORDER BY 1")
    with pytest.raises(BadSourceValue) as error:
        load()
    assert (error.value.table, error.value.key, error.value.column, error.value.value) == (table, key, column, value)
    assert f"{table} row {key!r}: column {column} holds {value!r}, which is not " in str(error.value)
    assert snapshot(warehouse) == before
    assert query(warehouse, "SELECT source_table, watermark FROM etl_watermarks ORDER BY 1") == marks
    [(run_id, error_text)] = query(warehouse, "SELECT run_id, error FROM etl_runs WHERE status = 'failed'")
    assert f"column {column}" in error_text
    recorded = [
        name for (name,) in query(warehouse, "SELECT source_table FROM etl_run_tables WHERE run_id = :r", r=run_id)
    ]
    loaded_first = [load.source.name for load in LOADS][: [load.source.name for load in LOADS].index(table) + 1]
    assert sorted(recorded) == sorted(loaded_first), "a failed run must keep the counts it gathered"


@pytest.mark.parametrize(("table", "row", "key", "column"), NULL_CASES)
def test_null_in_a_never_null_column_is_named(
    source: SourceDB, warehouse: str, load: Load, table: str, row: dict[str, Any], key: Any, column: str
) -> None:
    source.loosen(table)
    _good_rows(source)
    load()
    source.insert(table, row)
    _assert_failed_cleanly(warehouse, load, table, key, column, None)


@pytest.mark.parametrize("source", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("table", "column", "value"), TYPE_CASES)
def test_value_of_the_wrong_type_is_named(
    source: SourceDB, warehouse: str, load: Load, table: str, column: str, value: Any
) -> None:
    _good_rows(source)
    load()
    source.insert(table, {_KEYS[table]: "bad", "created_at": T0, "updated_at": LATER})
    source.execute(f"UPDATE {table} SET {column} = {value!r} WHERE {_KEYS[table]} = 'bad'")
    _assert_failed_cleanly(warehouse, load, table, "bad", column, value)
