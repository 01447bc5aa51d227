"""Opening the source and the warehouse: URLs we refuse, databases we cannot open, the ETL lock.

Every failure is a ``WarehouseError`` naming the database (password hidden)
and what to do; the warehouse URL is checked before the source is touched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.warehouse.conftest import HASH_KEY, hold_duckdb_file, query, snapshot
from tests.warehouse.sourcedb import T0, SourceDB
from warehouse.connections import exclusive_connection, warehouse_engine
from warehouse.demo import generate_demo_source
from warehouse.errors import LockTimeout, SourceUnavailable, UnsupportedURL, WarehouseUnavailable
from warehouse.etl import run_etl


@pytest.fixture
def sqlite_source(tmp_path: Path) -> str:
    db = SourceDB(f"sqlite:///{tmp_path / 'grace.sqlite'}")
    db.insert("agent_queries", {"query_id": "q1", "created_at": T0, "updated_at": T0})
    db.dispose()
    return db.url


@pytest.mark.parametrize("url", ["duckdb://", "duckdb:///", "duckdb:///:memory:"])
def test_duckdb_warehouse_must_be_a_file(sqlite_source: str, url: str) -> None:
    with pytest.raises(UnsupportedURL, match="names no file, and an in-memory warehouse is lost"):
        run_etl(sqlite_source, url, hash_key=HASH_KEY)


def test_duckdb_warehouse_in_a_missing_directory(sqlite_source: str, tmp_path: Path) -> None:
    with pytest.raises(WarehouseUnavailable, match=r"the directory '.*/missing' does not exist; create it"):
        run_etl(sqlite_source, f"duckdb:///{tmp_path}/missing/w.duckdb", hash_key=HASH_KEY)


def test_warehouse_file_that_is_not_duckdb(sqlite_source: str, tmp_path: Path) -> None:
    (tmp_path / "w.duckdb").write_text("not a database\n" * 100)
    with pytest.raises(WarehouseUnavailable, match="cannot open the warehouse duckdb:///.*w.duckdb"):
        run_etl(sqlite_source, f"duckdb:///{tmp_path}/w.duckdb", hash_key=HASH_KEY)


def test_unreachable_postgresql_warehouse_hides_the_password(sqlite_source: str) -> None:
    with pytest.raises(WarehouseUnavailable) as error:
        run_etl(sqlite_source, "postgresql://etl:s3cret@127.0.0.1:1/metrics", hash_key=HASH_KEY)
    message = str(error.value)
    assert "cannot open the warehouse postgresql+psycopg://etl:***@127.0.0.1:1/metrics" in message
    assert "s3cret" not in message and "Check that the server is running" in message


def test_source_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "grace.sqlite").write_text("not a database\n" * 100)
    with pytest.raises(SourceUnavailable, match="file is not a database"):
        run_etl(f"sqlite:///{tmp_path}/grace.sqlite", f"duckdb:///{tmp_path}/w.duckdb", hash_key=HASH_KEY)


@pytest.mark.parametrize("bad_source", ["sqlite:////nonexistent/grace.sqlite", "postgresql://nobody@127.0.0.1:1/none"])
@pytest.mark.parametrize("bad_warehouse", ["duckdb://", "sqlite:///w.db", "duckdb:////nonexistent/dir/w.duckdb"])
def test_bad_warehouse_is_reported_before_the_source_is_touched(bad_source: str, bad_warehouse: str) -> None:
    with pytest.raises((UnsupportedURL, WarehouseUnavailable), match="warehouse"):
        run_etl(bad_source, bad_warehouse, hash_key=HASH_KEY)


def test_asyncpg_source_url_is_read_through_psycopg(pg_database: Callable[[], str], tmp_path: Path) -> None:
    db = SourceDB(pg_database())
    db.insert("agent_queries", {"query_id": "q1", "created_at": T0, "updated_at": T0})
    db.dispose()
    warehouse = f"duckdb:///{tmp_path / 'w.duckdb'}"
    run_etl(db.url.replace("postgresql+psycopg://", "postgresql+asyncpg://"), warehouse, hash_key=HASH_KEY)
    assert query(warehouse, "SELECT query_id FROM fact_queries") == [("q1",)]


def test_lock_held_in_this_process_times_out(sqlite_source: str, tmp_path: Path) -> None:
    warehouse = f"duckdb:///{tmp_path / 'w.duckdb'}"
    with exclusive_connection(warehouse_engine(warehouse), timeout=1):
        with pytest.raises(LockTimeout, match="raise --lock-timeout"):
            run_etl(sqlite_source, warehouse, hash_key=HASH_KEY, lock_timeout=0.5)
    run_etl(sqlite_source, warehouse, hash_key=HASH_KEY, lock_timeout=0.5)


def test_duckdb_file_locked_by_another_process_times_out(sqlite_source: str, tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with hold_duckdb_file(str(path)), pytest.raises(LockTimeout, match="Stop it or raise --lock-timeout"):
        run_etl(sqlite_source, f"duckdb:///{path}", hash_key=HASH_KEY, lock_timeout=0.5)


def test_postgresql_lock_held_by_another_session_times_out(sqlite_source: str, pg_database: Callable[[], str]) -> None:
    warehouse = pg_database()
    holder = sa.create_engine(warehouse, poolclass=sa.pool.NullPool)
    with holder.connect() as connection:
        connection.execute(sa.text("SELECT pg_advisory_lock(hashtext('grace_metrics_etl'))"))
        with pytest.raises(LockTimeout, match="PostgreSQL warehouse lock for 0.5s; raise --lock-timeout"):
            run_etl(sqlite_source, warehouse, hash_key=HASH_KEY, lock_timeout=0.5)
    holder.dispose()
    run_etl(sqlite_source, warehouse, hash_key=HASH_KEY, lock_timeout=0.5)


def test_two_threads_on_one_duckdb_file_run_one_after_the_other(tmp_path: Path) -> None:
    """The server runs the ETL in a worker thread; DuckDB's file lock cannot keep two threads of a process apart."""
    source = f"sqlite:///{tmp_path / 'grace.sqlite'}"
    generate_demo_source(source, scale=0.05)
    clean, shared = (f"duckdb:///{tmp_path / name}.duckdb" for name in ("clean", "shared"))
    run_etl(source, clean, hash_key=HASH_KEY)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_etl(source, shared, hash_key=HASH_KEY)
        except BaseException as exc:  # noqa: BLE001 reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    (_, first_finished), (second_started, _) = query(
        shared, "SELECT started_at, finished_at FROM etl_runs ORDER BY finished_at"
    )
    assert second_started < first_finished, "the runs did not overlap: this test proves nothing"
    assert snapshot(shared) == snapshot(clean)
