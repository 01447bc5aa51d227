"""Shared fixtures: real databases, created fresh for the tests that use them and dropped as soon as those end.

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
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import redis
import sqlalchemy as sa

from metrics.registry import load_registry
from metrics.result_cache import CacheSettings
from metrics.rollup_store import ensure_rollups
from tests.metrics.catalog_data import Loaded, load_catalog_data
from tests.small_source import build_source
from warehouse.connections import warehouse_url as sync_url
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


class Reaper:
    """Drops test databases in background threads as soon as whoever created them is finished with them.

    Each ``DROP DATABASE`` forces a PostgreSQL checkpoint (one to two seconds on a busy machine); dropping
    them one by one at the end of the session took about 100 s of a full run. A database belongs to the
    innermost fixture being set up when it was created (or to the running test when a test body created it)
    and is dropped once that fixture is torn down (or the test is), while later tests run; the session waits
    for the drops still running at its end. It is a plugin registered for the whole session, because
    conftest hooks do not see session-scoped fixtures.
    """

    def __init__(self) -> None:
        self.admin: sa.Engine | None = None
        self.pool: ThreadPoolExecutor | None = None
        self.setting_up: list[object] = []
        """The fixture definitions being set up, innermost last (fixtures can set up others while they run)."""
        self.owned: dict[object, list[str]] = {}
        self.drops: list[Future[None]] = []

    def start(self, admin: sa.Engine) -> None:
        self.admin = admin
        self.pool = ThreadPoolExecutor(max_workers=DROP_THREADS, thread_name_prefix="gm-test-drop")

    def created(self, name: str) -> None:
        owner = self.setting_up[-1] if self.setting_up else TEST_BODY
        self.owned.setdefault(owner, []).append(name)

    def release(self, owner: object) -> None:
        for name in self.owned.pop(owner, []):
            assert self.pool is not None, "databases are only created after start()"
            self.drops.append(self.pool.submit(self._drop, name))

    def _drop(self, name: str) -> None:
        assert self.admin is not None
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def finish(self) -> None:
        """Drop whatever is left, wait for every drop, and raise the first that failed."""
        for owner in list(self.owned):
            self.release(owner)
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        for drop in self.drops:
            drop.result()

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[object]) -> Iterator[object]:
        self.setting_up.append(fixturedef)
        try:
            return (yield)
        finally:
            self.setting_up.pop()

    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[object]) -> None:
        self.release(fixturedef)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self) -> Iterator[None]:
        try:
            return (yield)
        finally:
            self.release(TEST_BODY)


TEST_BODY = object()
"""The owner of databases a test function creates itself: released when that test is torn down."""
DROP_THREADS = 4
REAPER = "grace-metrics-test-database-reaper"


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(Reaper(), REAPER)


@pytest.fixture(scope="session")
def pg_database(pg_admin: sa.Engine, pytestconfig: pytest.Config) -> Iterator[Callable[[], str]]:
    """A factory of fresh PostgreSQL databases; returns their psycopg URLs. See ``Reaper`` for when they go."""
    reaper: Reaper = pytestconfig.pluginmanager.get_plugin(REAPER)
    reaper.start(pg_admin)

    def create() -> str:
        name = database_name(TEST_DATABASES, datetime.now(UTC))
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        reaper.created(name)
        return pg_admin.url.set(database=name).render_as_string(hide_password=False)

    yield create
    reaper.finish()


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


@pytest.fixture(scope="session")
def rolled_up(tmp_path_factory: pytest.TempPathFactory, pg_database: Callable[[], str]) -> Loaded:
    """The catalog dataset in warehouses of its own, with every built-in rollup built."""
    loaded = load_catalog_data(tmp_path_factory.mktemp("rolled_up"), pg_database())
    registry = load_registry()
    for url in loaded.urls.values():
        engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
        with engine.begin() as connection:
            ensure_rollups(connection, registry)
        engine.dispose()
    return loaded


REDIS_URL = os.environ.get("GRACE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_cache() -> Iterator[CacheSettings]:
    """Result-cache settings on the real Redis, under a key prefix of this test's own; its keys deleted after."""
    settings = CacheSettings(url=REDIS_URL, key_prefix=f"grace-metrics-test:{uuid.uuid4().hex}:")
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        client.ping()
    except redis.ConnectionError as error:
        if in_ci():
            raise
        pytest.skip(f"no Redis at {REDIS_URL}: {error}")
    yield settings
    keys = list(client.scan_iter(match=settings.key_prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["memory", "redis"])
def cache_settings(request: pytest.FixtureRequest) -> CacheSettings:
    """Each result-cache store in turn."""
    return CacheSettings() if request.param == "memory" else request.getfixturevalue("redis_cache")
