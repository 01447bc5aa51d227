"""The catalog dataset, built once per session and shared by the result, parity and filter tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from metrics.registry import load_registry
from metrics.rollup_store import ensure_rollups
from tests.metrics.catalog_data import Engines, Loaded, load_catalog_data
from warehouse.connections import warehouse_url


@pytest.fixture(scope="session")
def loaded(tmp_path_factory: pytest.TempPathFactory, pg_database: Callable[[], str]) -> Loaded:
    return load_catalog_data(tmp_path_factory.mktemp("catalog"), pg_database())


@pytest.fixture(scope="session")
def engines(loaded: Loaded) -> Iterator[Engines]:
    engines = Engines(loaded.urls)
    yield engines
    engines.close()


@pytest.fixture(scope="session")
def rolled_up(tmp_path_factory: pytest.TempPathFactory, pg_database: Callable[[], str]) -> Loaded:
    """The catalog dataset in warehouses of its own, with every built-in rollup built."""
    loaded = load_catalog_data(tmp_path_factory.mktemp("rolled_up"), pg_database())
    registry = load_registry()
    for url in loaded.urls.values():
        engine = sa.create_engine(warehouse_url(url), poolclass=sa.pool.NullPool)
        with engine.begin() as connection:
            ensure_rollups(connection, registry)
        engine.dispose()
    return loaded
