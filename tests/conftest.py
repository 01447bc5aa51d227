"""Shared fixtures: real databases, created fresh for each test run and dropped after.

The PostgreSQL tests are skipped, loudly, only when no server answers at the
configured address (and never under CI); any other problem, such as a missing
database or a refused login, fails them. Test databases are named
``gm_test_<created, UTC>_<random>``; those a crashed session left behind are
dropped at the start (no privilege beyond dropping one's own is needed).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.small_source import build_source
from warehouse.etl import run_etl

PG_ADMIN_URL = os.environ.get("GRACE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_DATABASES = "gm_test_"
STALE_AFTER = timedelta(hours=2)
"""Older than any test session; a younger database may belong to a session running right now."""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def unreachable(url: sa.URL) -> str | None:
    """Why no server answers at the URL's host and port, or None when one does (a socket path is assumed to)."""
    host = url.host or "localhost"
    if host.startswith("/"):
        return None
    try:
        socket.create_connection((host, url.port or 5432), timeout=5).close()
    except OSError as exc:
        return str(exc)
    return None


def open_admin(url: str, *, ci: bool) -> sa.Engine:
    """An autocommit engine on the server; skips (fails under CI) only if the server cannot be reached at all."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    reason = unreachable(engine.url)
    if reason is not None:
        message = f"PostgreSQL is not reachable at {engine.url.render_as_string(hide_password=True)}: {reason}"
        if ci:
            pytest.fail(f"{message} (CI must run the PostgreSQL tests)")
        pytest.skip(f"SKIPPING POSTGRESQL TESTS: {message}")
    with engine.connect() as connection:  # a wrong database, user or password fails here, loudly
        connection.execute(sa.text("select 1"))
    return engine


def database_name(prefix: str, created: datetime) -> str:
    return f"{prefix}{created:%Y%m%d%H%M%S}_{uuid.uuid4().hex[:8]}"


def drop_stale_databases(engine: sa.Engine, prefix: str, older_than: timedelta) -> list[str]:
    """Drop the databases named ``prefix<created>_*`` that no one is connected to and are older than ``older_than``."""
    idle = sa.text(
        "SELECT datname FROM pg_database d WHERE starts_with(datname, :prefix) "
        "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid) ORDER BY datname"
    )
    cutoff = datetime.now(UTC).replace(tzinfo=None) - older_than
    dropped = []
    with engine.connect() as connection:
        for name in connection.execute(idle, {"prefix": prefix}).scalars().all():
            try:
                created = datetime.strptime(name[len(prefix) :].split("_")[0], "%Y%m%d%H%M%S")
            except ValueError:
                continue  # not one of ours
            if created >= cutoff:
                continue
            try:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            except sa.exc.DBAPIError:
                continue  # someone connected since: not stale after all
            dropped.append(name)
    return dropped


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    engine = open_admin(PG_ADMIN_URL, ci=in_ci())
    drop_stale_databases(engine, TEST_DATABASES, STALE_AFTER)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_database(pg_admin: sa.Engine) -> Iterator[Callable[[], str]]:
    """A factory of fresh PostgreSQL databases; returns their psycopg URLs and drops them all at the end."""
    created: list[str] = []

    def create() -> str:
        name = database_name(TEST_DATABASES, datetime.now(UTC))
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
