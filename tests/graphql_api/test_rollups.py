"""The ETL keeps the registry's rollups in step: after incremental runs with late events, late commits and type-2
changes every rollup equals a fresh rebuild, and a run that fails after loading the facts leaves facts and
rollups as they were. On DuckDB and PostgreSQL warehouses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from graphql_api.cli import main
from graphql_api.rollups import RegistryRollups
from metrics.compiler.rollup_tables import refresh_statements, rollup_table
from metrics.registry import load_registry
from warehouse import schema
from warehouse.connections import warehouse_url
from warehouse.demo import advance_demo_source, generate_demo_source
from warehouse.etl import DerivedWrite, Touched, run_etl

REGISTRY = load_registry()
HASH_KEY = "rollup-test"


def rows(url: str, table: sa.Table) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(warehouse_url(url), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        found = sorted((tuple(row) for row in connection.execute(sa.select(table))), key=repr)
    engine.dispose()
    return found


def rebuilt(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every rollup as a full rebuild from the facts gives it (in a transaction rolled back after)."""
    engine = sa.create_engine(warehouse_url(url), poolclass=sa.pool.NullPool)
    found = {}
    with engine.connect() as connection, connection.begin() as transaction:
        for rollup in REGISTRY.rollups.values():
            statements = refresh_statements(rollup, REGISTRY)
            assert statements is not None
            for statement in statements:
                connection.execute(statement)
            table = rollup_table(rollup, REGISTRY)
            found[rollup.name] = sorted((tuple(row) for row in connection.execute(sa.select(table))), key=repr)
        transaction.rollback()
    engine.dispose()
    return found


def stored(url: str) -> dict[str, list[tuple[Any, ...]]]:
    return {name: rows(url, rollup_table(rollup, REGISTRY)) for name, rollup in REGISTRY.rollups.items()}


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    return request.getfixturevalue("pg_database")()


@pytest.mark.slow
def test_incremental_runs_keep_every_rollup_equal_to_a_fresh_rebuild(warehouse: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    generate_demo_source(source, scale=0.05)
    rollups = RegistryRollups(REGISTRY)
    first = run_etl(source, warehouse, hash_key=HASH_KEY, derived=rollups)
    assert {(w.name, w.action) for w in first.derived} == {(name, "created") for name in REGISTRY.rollups}
    for step in (1, 2, 3):
        before = stored(warehouse)
        advance_demo_source(source, step=step, scale=0.05)
        result = run_etl(source, warehouse, hash_key=HASH_KEY, derived=rollups)
        after = stored(warehouse)
        assert after == rebuilt(warehouse)
        assert after["verifications_by_hour"] != before["verifications_by_hour"]
        assert {w.action for w in result.derived} == {"refreshed"}
        assert all(after[name] for name in REGISTRY.rollups)


class FailingAfterRefresh(RegistryRollups):
    """Rollups whose refresh writes, then fails: the run dies between the facts and the end of the refresh."""

    def refresh(self, connection: sa.Connection, touched: list[Touched], *, skip: set[str]) -> list[DerivedWrite]:
        super().refresh(connection, touched, skip=skip)
        raise RuntimeError("killed while refreshing rollups")


@pytest.mark.slow
def test_a_run_failing_in_the_refresh_leaves_facts_and_rollups_as_they_were(warehouse: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    generate_demo_source(source, scale=0.02)
    run_etl(source, warehouse, hash_key=HASH_KEY, derived=RegistryRollups(REGISTRY))
    facts = {mapping.table.name: rows(warehouse, mapping.table) for mapping in schema.FACTS}
    rolled_up = stored(warehouse)
    advance_demo_source(source, step=1, scale=0.02)
    with pytest.raises(RuntimeError, match="killed while refreshing"):
        run_etl(source, warehouse, hash_key=HASH_KEY, derived=FailingAfterRefresh(REGISTRY))
    assert {mapping.table.name: rows(warehouse, mapping.table) for mapping in schema.FACTS} == facts
    assert stored(warehouse) == rolled_up
    run_etl(source, warehouse, hash_key=HASH_KEY, derived=RegistryRollups(REGISTRY))
    assert stored(warehouse) == rebuilt(warehouse) != rolled_up


def test_rollups_build_creates_what_is_declared_and_nothing_twice(
    warehouse: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    generate_demo_source(source, scale=0.01)
    run_etl(source, warehouse, hash_key=HASH_KEY)  # an ETL that knows no rollups
    assert main(["rollups", "build", "--warehouse", warehouse]) == 0
    out = capsys.readouterr().out
    assert f"rollups: {len(REGISTRY.rollups)} of {len(REGISTRY.rollups)} changed" in out
    assert "verifications_by_hour" in out and "created" in out
    assert stored(warehouse) == rebuilt(warehouse)
    assert main(["rollups", "build", "--warehouse", warehouse]) == 0
    assert f"ok: the {len(REGISTRY.rollups)} declared rollups are built and current" in capsys.readouterr().out
