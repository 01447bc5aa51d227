"""Loads that cross many batches: the same warehouse as one batch, and a bad row in a later batch stops the run whole.

The batch size is what bounds the ETL's memory; a run reads, parses and
merges batch by batch inside one warehouse transaction. Here it is made small
(``batch_rows``) so a small source crosses dozens of batch boundaries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.warehouse.conftest import HASH_KEY, query, snapshot
from tests.warehouse.sourcedb import T0, SourceDB
from warehouse.demo import advance_demo_source, generate_demo_source
from warehouse.errors import BadSourceValue
from warehouse.etl import run_etl

BATCH_ROWS = 64
ROWS = 400
"""Queries written before the bad one: it lands in the seventh batch of its table."""

_FACTS = ("fact_verifications", "fact_errors", "fact_approvals", "fact_missions", "fact_queries", "fact_feedback",
          "fact_traces")  # fmt: skip
_MEMBERS = ("dim_tier", "dim_agent", "dim_actor", "dim_component", "dim_mission")
"""Their first column, the surrogate key, depends on batch boundaries; the members must not."""


def _content(url: str) -> dict[str, list[Any]]:
    """Facts with member keys as natural keys; members and practices without surrogate keys."""
    content = snapshot(url)
    facts = {table: content[table] for table in _FACTS}
    facts["bridge_trace_practices"] = [row[:4] + row[5:] for row in content["bridge_trace_practices"]]  # agent_key
    members = {table: sorted((row[1:] for row in content[table]), key=repr) for table in _MEMBERS}
    return {**facts, **members}


def test_many_small_batches_load_what_one_batch_loads(tmp_path: Path, warehouse: str) -> None:
    source = f"sqlite:///{tmp_path / 'grace.sqlite'}"
    generate_demo_source(source, scale=0.05)
    one_batch = f"duckdb:///{tmp_path / 'one_batch.duckdb'}"
    run_etl(source, one_batch, hash_key=HASH_KEY, batch_rows=1_000_000)
    first = run_etl(source, warehouse, hash_key=HASH_KEY, batch_rows=BATCH_ROWS)
    assert max(table.rows_read for table in first.tables) > 10 * BATCH_ROWS, "too few rows to cross many batches"
    advance_demo_source(source, step=1, scale=0.05)
    run_etl(source, one_batch, hash_key=HASH_KEY, batch_rows=1_000_000)
    run_etl(source, warehouse, hash_key=HASH_KEY, batch_rows=BATCH_ROWS)
    assert _content(warehouse) == _content(one_batch)


def _queries(source: SourceDB, count: int, at: Any) -> None:
    rows = [{"query_id": f"q{number:04d}", "created_at": at, "updated_at": at} for number in range(count)]
    source.insert("agent_queries", *rows)


def _assert_nothing_written(warehouse: str, load: Callable[[], object], bad: tuple[str, str, str, Any]) -> None:
    before = snapshot(warehouse)
    marks = query(warehouse, "SELECT source_table, watermark FROM etl_watermarks ORDER BY 1")
    with pytest.raises(BadSourceValue) as error:
        load()
    assert (error.value.table, error.value.key, error.value.column, error.value.value) == bad
    assert snapshot(warehouse) == before
    assert query(warehouse, "SELECT source_table, watermark FROM etl_watermarks ORDER BY 1") == marks


@pytest.mark.parametrize("source", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("column", "value"),
    [("latency_ms", "fast"), ("created_at", "yesterday"), ("cost_usd", "cheap"), ("human_edited", 2)],
)
def test_a_bad_value_in_a_later_batch_writes_nothing(source: SourceDB, warehouse: str, column: str, value: Any) -> None:
    load = lambda: run_etl(source.url, warehouse, hash_key=HASH_KEY, batch_rows=BATCH_ROWS)  # noqa: E731
    source.insert("agent_queries", {"query_id": "first", "created_at": T0, "updated_at": T0})
    load()
    later = T0 + timedelta(hours=1)
    _queries(source, ROWS, later)
    source.insert("agent_queries", {"query_id": "zbad", "created_at": later, "updated_at": later})
    source.execute(f"UPDATE agent_queries SET {column} = {value!r} WHERE query_id = 'zbad'")
    source.insert(
        "agent_queries", *({"query_id": f"z{n}", "created_at": later, "updated_at": later} for n in range(50))
    )
    _assert_nothing_written(warehouse, load, ("agent_queries", "zbad", column, value))


def test_a_null_in_a_later_batch_writes_nothing(source: SourceDB, warehouse: str) -> None:
    load = lambda: run_etl(source.url, warehouse, hash_key=HASH_KEY, batch_rows=BATCH_ROWS)  # noqa: E731
    source.loosen("error_events")
    source.insert("error_events", {"event_id": "first", "occurred_at": T0, "updated_at": T0})
    load()
    later = T0 + timedelta(hours=1)
    events = [{"event_id": f"e{number:04d}", "occurred_at": later, "updated_at": later} for number in range(ROWS)]
    source.insert("error_events", *events, {"event_id": "late-null", "occurred_at": later, "updated_at": later})
    source.update("error_events", "late-null", severity=None)
    _assert_nothing_written(warehouse, load, ("error_events", "late-null", "severity", None))
