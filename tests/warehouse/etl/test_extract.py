"""Incremental reads: every timestamp form sources.md allows is read near the cut-off, through the index on SQLite.

The exact comparison normalises SQLite's text, which no index serves; a
prefilter on the raw text (the date a day before the cut-off) lets an index
on ``updated_at`` do the work. It must never drop a row the exact comparison
keeps, whatever the form: space or ``T``, fractional seconds, ``+00:00`` or
``Z``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.warehouse.sourcedb import SourceDB
from warehouse.etl.extract import LATE_COMMIT_OVERLAP, check_contract, count_changed, read_changed
from warehouse.source import agent_queries

WATERMARK = datetime(2025, 11, 4, 0, 2)
"""Two minutes past midnight: the cut-off (watermark minus the overlap) falls on the day before."""
CUTOFF = WATERMARK - LATE_COMMIT_OVERLAP

FORMS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%fZ",
         "%Y-%m-%d %H:%M:%S+00:00", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%f+00:00")  # fmt: skip
OFFSETS = (timedelta(0), timedelta(milliseconds=1), timedelta(seconds=1), timedelta(minutes=3), timedelta(hours=30))
"""After the cut-off by these (all read); the same before it are never read."""


@pytest.fixture
def source(tmp_path: Path) -> Iterator[SourceDB]:
    db = SourceDB(f"sqlite:///{tmp_path / 'grace.sqlite'}")
    yield db
    db.dispose()


def _insert(source: SourceDB, rows: list[tuple[str, str]]) -> None:
    """(query_id, updated_at text) rows, the text stored exactly as given."""
    values = ", ".join(
        f"('{key}', '2025-11-01 00:00:00', 'a', 'c', 'u', 1, 0, 0, 0.0, '{updated}')" for key, updated in rows
    )
    source.execute(
        "INSERT INTO agent_queries (query_id, created_at, agent_name, conversation_id, user_id, latency_ms, "
        f"human_edited, error_occurred, cost_usd, updated_at) VALUES {values}"
    )


def _read(source: SourceDB, since: datetime, *, nullable: bool = False) -> set[str]:
    with source.engine.connect() as connection:
        batches = read_changed(connection, agent_queries, since, nullable=nullable)
        keys = {row["query_id"] for batch in batches for row in batch}
        assert count_changed(connection, agent_queries, since, nullable=nullable) == len(keys)
    return keys


def test_every_form_near_the_cutoff_is_read_and_none_before_it(source: SourceDB) -> None:
    after = [
        (f"after-{i}-{j}", (CUTOFF + offset).strftime(form))
        for i, form in enumerate(FORMS)
        for j, offset in enumerate(OFFSETS)
    ]
    before = [
        (f"before-{i}-{j}", (CUTOFF - offset).strftime(form))
        for i, form in enumerate(FORMS)
        for j, offset in enumerate(OFFSETS)
        if offset
        and not (offset < timedelta(seconds=1) and "%f" not in form)  # a form without fractions rounds to the cut-off
    ]
    _insert(source, after + before)
    assert _read(source, WATERMARK) == {key for key, _ in after}


def test_null_and_unparseable_updated_at_are_read_so_the_parser_reports_them(source: SourceDB) -> None:
    source.loosen("agent_queries")
    _insert(source, [("old", "2025-10-01 00:00:00"), ("garbage", "yesterday")])
    source.execute("UPDATE agent_queries SET updated_at = NULL WHERE query_id = 'old'")
    assert _read(source, WATERMARK, nullable=True) == {"old", "garbage"}
    assert check_contract(source.engine) == {"agent_queries"}, (
        "only a table that allows NULL stamps is looked at for them"
    )


def _steps(source: SourceDB, since: datetime) -> tuple[int, int]:
    """(rows read, SQLite VM steps in thousands) of reading and counting the rows changed since ``since``."""
    with source.engine.connect() as connection:
        steps = [0]

        def step() -> int:
            steps[0] += 1
            return 0

        connection.connection.driver_connection.set_progress_handler(step, 1000)  # type: ignore[union-attr]
        rows = sum(len(batch) for batch in read_changed(connection, agent_queries, since, nullable=False))
        count_changed(connection, agent_queries, since, nullable=False)
    return rows, steps[0]


def test_incremental_read_on_sqlite_is_served_by_the_updated_at_index(source: SourceDB) -> None:
    """Reading the few rows after the cut-off costs steps in proportion to them, not to the table."""
    old = datetime(2025, 1, 1)
    _insert(source, [(f"old{i}", (old + timedelta(minutes=i)).isoformat(sep=" ")) for i in range(20_000)])
    _insert(source, [(f"new{i}", (CUTOFF + timedelta(seconds=i)).isoformat(sep="T") + "Z") for i in range(20)])
    rows, steps = _steps(source, WATERMARK)
    _, full_scan = _steps(source, old)
    assert rows == 20
    assert full_scan > 100 * max(steps, 1), (steps, full_scan)
