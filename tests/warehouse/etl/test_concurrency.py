"""Two ``grace-metrics etl`` processes started together on one warehouse end as one clean run.

Runs on a warehouse are serialised (DuckDB's file lock, a PostgreSQL advisory
lock): both must exit 0, the warehouse must equal one uninterrupted run's, and
every source row must land exactly once. The run log proves the two runs did
overlap (the second started before the first finished) and that the one that
waited found nothing left to do.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.warehouse.conftest import HASH_KEY, hold_duckdb_file, query, snapshot
from warehouse.demo import advance_demo_source, generate_demo_source
from warehouse.etl import run_etl

pytestmark = pytest.mark.slow

START_UP_S = 8.0
"""Long enough for a process to start, import and reach the lock, even on a busy machine."""
SCALE = 0.25
"""5,000 action contracts: a run takes a few seconds, far longer than the second process needs to start."""

FACTS = {  # source table -> the fact table holding one row per source row
    "missions": "fact_missions",
    "action_contracts": "fact_verifications",
    "error_events": "fact_errors",
    "approval_requests": "fact_approvals",
    "agent_queries": "fact_queries",
    "agent_feedback": "fact_feedback",
    "agent_traces": "fact_traces",
}


def run_together(source: str, warehouse: str, *, held: bool = False) -> None:
    """Start two ETL processes at once and wait for both; both must succeed.

    ``held``: the warehouse lock is held until both processes wait for it, so
    they overlap even when a run is shorter than a process's start-up.
    """
    command = [
        sys.executable,
        "-m",
        "graphql_api.cli",
        "etl",
        "--source",
        source,
        "--warehouse",
        warehouse,
        "--hash-key",
        HASH_KEY,
        "--quiet",
    ]
    with hold_lock(warehouse) if held else nullcontext():
        processes = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
        ]
        if held:
            wait_until_both_wait(warehouse)
    errors = [process.communicate(timeout=300)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], errors


@contextmanager
def hold_lock(warehouse: str) -> Iterator[None]:
    if warehouse.startswith("duckdb"):
        with hold_duckdb_file(sa.make_url(warehouse).database or ""):
            yield
        return
    engine = sa.create_engine(warehouse, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT pg_advisory_lock(hashtext('grace_metrics_etl'))"))
        yield
    engine.dispose()


def wait_until_both_wait(warehouse: str) -> None:
    """PostgreSQL shows the two waiting lock requests; a DuckDB file's waiters cannot be seen, so give them time."""
    if warehouse.startswith("duckdb"):
        time.sleep(START_UP_S)
        return
    engine = sa.create_engine(warehouse, poolclass=sa.pool.NullPool)
    waiting = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = "
                      "(SELECT oid FROM pg_database WHERE datname = current_database())")  # fmt: skip
    deadline = time.monotonic() + 60
    with engine.connect() as connection:
        while connection.execute(waiting).scalar_one() < 2:
            assert time.monotonic() < deadline, "the ETL processes never reached the lock"
            time.sleep(0.1)
    engine.dispose()


def source_counts(source: str) -> dict[str, int]:
    engine = sa.create_engine(source, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        counts = {table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() for table in FACTS}
    engine.dispose()
    return counts


def warehouse_counts(warehouse: str) -> dict[str, int]:
    return {table: query(warehouse, f"SELECT count(*) FROM {fact}")[0][0] for table, fact in FACTS.items()}


def assert_serialised(warehouse: str, source: str, before: dict[str, int]) -> None:
    """The last two runs overlapped in time, both succeeded, and each new source row was inserted by exactly one."""
    runs = query(warehouse, "SELECT run_id, started_at, finished_at, status FROM etl_runs ORDER BY finished_at")
    (first, _, first_finished, _), (second, second_started, _, _) = runs[-2:]
    assert [status for *_, status in runs] == ["succeeded"] * len(runs)
    assert second_started < first_finished, "the runs did not overlap: this test proves nothing"
    stats = {
        run: {
            table: (inserted, updated)
            for table, inserted, updated in query(
                warehouse,
                "SELECT source_table, rows_inserted, rows_updated FROM etl_run_tables WHERE run_id = :run",
                run=run,
            )
        }
        for run in (first, second)
    }
    now = source_counts(source)
    assert {table: stats[first][table][0] for table in FACTS} == {
        table: now[table] - before.get(table, 0) for table in FACTS
    }
    assert set(stats[second].values()) == {(0, 0)}, "the run that waited changed rows the first had loaded"
    assert warehouse_counts(warehouse) == now


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("concurrency_source") / "grace.sqlite"
    generate_demo_source(f"sqlite:///{path}", scale=SCALE)
    return path


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_two_runs_started_together_load_once(
    kind: str, demo_file: Path, tmp_path: Path, pg_database: Callable[[], str]
) -> None:
    shutil.copyfile(demo_file, tmp_path / "grace.sqlite")
    source = f"sqlite:///{tmp_path / 'grace.sqlite'}"
    clean, shared = (
        f"duckdb:///{tmp_path / name}.duckdb" if kind == "duckdb" else pg_database() for name in ("clean", "shared")
    )

    # Initial load: the warehouse does not exist yet when both start.
    run_etl(source, clean, hash_key=HASH_KEY)
    run_together(source, shared)
    assert snapshot(shared) == snapshot(clean)
    assert_serialised(shared, source, before={})

    # A day later, both catch up at once.
    before = source_counts(source)
    advance_demo_source(source, step=1, scale=SCALE)
    assert source_counts(source) != before
    run_etl(source, clean, hash_key=HASH_KEY)
    run_together(source, shared, held=True)  # catching up takes less than starting a process
    assert snapshot(shared) == snapshot(clean)
    assert_serialised(shared, source, before=before)
