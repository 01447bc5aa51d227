"""The data version changes with every run that changes what queries read, and only then."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from tests.warehouse.conftest import query
from tests.warehouse.sourcedb import T0, SourceDB
from warehouse.etl import EtlResult


def version(warehouse: str) -> list[tuple[str]]:
    return query(warehouse, "SELECT value FROM etl_settings WHERE name = 'data_version'")


def test_a_run_that_changes_rows_advances_the_version_and_one_that_finds_nothing_does_not(
    source: SourceDB, warehouse: str, load: Callable[[], EtlResult]
) -> None:
    source.insert("agents", {"agent_name": "bot", "agent_type": "data", "updated_at": T0})
    first = load()
    assert version(warehouse) == [(first.run_id,)]
    load()
    assert version(warehouse) == [(first.run_id,)]
    source.update("agents", "bot", agent_type="ops", updated_at=T0 + timedelta(hours=1))
    changed = load()
    assert changed.run_id != first.run_id and version(warehouse) == [(changed.run_id,)]
