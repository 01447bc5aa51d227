"""Shared fixtures: real databases, created fresh for each test run and dropped after."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from tests.small_source import build_source
from warehouse.etl import run_etl

PG_ADMIN_URL = os.environ.get("GRACE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _admin_engine() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc.orig}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI must run the PostgreSQL tests)")
        pytest.skip(f"SKIPPING POSTGRESQL TESTS: {message}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_database(pg_admin: sa.Engine) -> Iterator[Callable[[], str]]:
    """A factory of fresh PostgreSQL databases; returns their psycopg URLs and drops them all at the end."""
    created: list[str] = []

    def create() -> str:
        name = f"gm_test_{uuid.uuid4().hex[:12]}"
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return pg_admin.url.set(database=name).render_as_string(hide_password=False)

    yield create
    with pg_admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url(pg_database: Callable[[], str]) -> str:
    return pg_database()


@pytest.fixture(scope="session")
def duckdb_warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("api")
    source = build_source(f"sqlite:///{root / 'source.sqlite'}")
    url = f"duckdb:///{root / 'warehouse.duckdb'}"
    run_etl(source.url, url, hash_key="k")
    source.dispose()
    return url


@pytest.fixture(scope="session")
def postgresql_warehouse(tmp_path_factory: pytest.TempPathFactory, pg_database: Callable[[], str]) -> str:
    source = build_source(f"sqlite:///{tmp_path_factory.mktemp('api_pg') / 'source.sqlite'}")
    url = pg_database()
    run_etl(source.url, url, hash_key="k")
    source.dispose()
    return url.replace("postgresql+psycopg", "postgresql+asyncpg")


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_warehouse")
