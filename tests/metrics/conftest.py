"""The catalog dataset, built once per session and shared by the result, parity and filter tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.metrics.catalog_data import Engines, Loaded, load_catalog_data


@pytest.fixture(scope="session")
def loaded(tmp_path_factory: pytest.TempPathFactory, pg_database: Callable[[], str]) -> Loaded:
    return load_catalog_data(tmp_path_factory.mktemp("catalog"), pg_database())


@pytest.fixture(scope="session")
def engines(loaded: Loaded) -> Iterator[Engines]:
    engines = Engines(loaded.urls)
    yield engines
    engines.close()
