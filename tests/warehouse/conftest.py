"""Fixtures for the physical layer: sources on SQLite and PostgreSQL, warehouses on DuckDB and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.warehouse.sourcedb import SourceDB
from warehouse import schema
from warehouse.connections import warehouse_url as sync_warehouse_url
from warehouse.etl import EtlResult, run_etl
from warehouse.etl.data_version import DATA_VERSION

HASH_KEY = "test-secret"


@pytest.fixture(params=["sqlite", "postgresql"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SourceDB]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'grace.sqlite'}"
    else:
        url = request.getfixturevalue("pg_database")()
    db = SourceDB(url)
    yield db
    db.dispose()


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    return request.getfixturevalue("pg_database")()


@pytest.fixture
def load(source: SourceDB, warehouse: str) -> Callable[[], EtlResult]:
    """Run the ETL from the test's source into the test's warehouse."""
    return lambda: run_etl(source.url, warehouse, hash_key=HASH_KEY)


@contextmanager
def hold_duckdb_file(path: str) -> Iterator[None]:
    """Another process holds the DuckDB file open (and so locked) while the block runs."""
    code = f"import duckdb, time; c = duckdb.connect({path!r}); print('held', flush=True); time.sleep(120)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield
    finally:
        holder.kill()
        holder.wait()


def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(sync_warehouse_url(url), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(sql), params)]


_KEYS = {  # surrogate key column -> (dimension table, its natural key)
    "tier_key": ("dim_tier", "tier_id"),
    "agent_key": ("dim_agent", "agent_name"),
    "actor_key": ("dim_actor", "actor_id"),
    "approver_key": ("dim_actor", "actor_id"),
    "annotator_key": ("dim_actor", "actor_id"),
    "component_key": ("dim_component", "component_name"),
    "mission_key": ("dim_mission", "mission_id"),
}
_BOOKKEEPING = {"etl_runs", "etl_run_tables", "etl_run_rollups", "etl_watermarks"}


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every warehouse table's content with surrogate keys replaced by natural keys, comparable across loads."""
    engine = sa.create_engine(sync_warehouse_url(url), poolclass=sa.pool.NullPool)
    content: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        natural: dict[str, dict[int, str]] = {
            table: dict(
                connection.execute(sa.text(f"SELECT DISTINCT {table.split('_')[1]}_key, {key} FROM {table}")).all()
            )
            for table, key in set(_KEYS.values())
        }
        for table in schema.metadata.sorted_tables:
            if table.name in _BOOKKEEPING:
                continue
            statement = sa.select(table)
            if table is schema.etl_settings:  # the data version is the id of the run that committed it
                statement = statement.where(table.c.name != DATA_VERSION)
            rows = connection.execute(statement).mappings().all()
            resolved = [
                tuple(
                    natural[_KEYS[name][0]].get(value) if name in _KEYS and table.name.startswith("fact") else value
                    for name, value in row.items()
                )
                for row in rows
            ]
            content[table.name] = sorted(resolved, key=repr)
    engine.dispose()
    return content
