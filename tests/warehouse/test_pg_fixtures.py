"""The PostgreSQL test fixtures (tests/conftest.py): skip only when no server answers; clean up after crashes."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL, TEST_DATABASES, database_name, drop_stale_databases, open_admin

CLOSED_PORT = "postgresql+psycopg://postgres@127.0.0.1:1/test"


def test_no_server_skips_outside_ci() -> None:
    with pytest.raises(pytest.skip.Exception, match="SKIPPING POSTGRESQL TESTS: PostgreSQL is not reachable"):
        open_admin(CLOSED_PORT, ci=False)


def test_no_server_fails_under_ci() -> None:
    with pytest.raises(pytest.fail.Exception, match="CI must run the PostgreSQL tests"):
        open_admin(CLOSED_PORT, ci=True)


@pytest.mark.parametrize("problem", ["missing database", "unknown user"])
def test_a_reachable_server_that_refuses_fails_instead_of_skipping(pg_admin: sa.Engine, problem: str) -> None:
    url = sa.make_url(PG_ADMIN_URL)
    url = (
        url.set(database="gm_no_such_database")
        if problem == "missing database"
        else url.set(username="gm_no_such_user")
    )
    with pytest.raises(sa.exc.OperationalError):
        open_admin(url.render_as_string(hide_password=False), ci=False)


def _databases(engine: sa.Engine, prefix: str) -> set[str]:
    with engine.connect() as connection:
        names = connection.execute(
            sa.text("SELECT datname FROM pg_database WHERE starts_with(datname, :p)"), {"p": prefix}
        )
        return set(names.scalars())


def test_stale_databases_are_dropped_unless_in_use_or_young(pg_admin: sa.Engine) -> None:
    prefix = f"gm_stale_{uuid.uuid4().hex[:8]}_"
    now = datetime.now(UTC)
    idle, busy, young = (database_name(prefix, created) for created in (now - timedelta(hours=3),) * 2 + (now,))
    with pg_admin.connect() as connection:
        for name in (idle, busy, young):
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    holder = sa.create_engine(pg_admin.url.set(database=busy), poolclass=sa.pool.NullPool)
    try:
        with holder.connect():
            assert drop_stale_databases(pg_admin, prefix, timedelta(hours=2)) == [idle]
            assert _databases(pg_admin, prefix) == {busy, young}
    finally:
        holder.dispose()
        with pg_admin.connect() as connection:
            for name in (idle, busy, young):
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


INNER_SESSION = """
import pytest
import sqlalchemy as sa

from tests.conftest import REAPER

SEEN = {}


@pytest.fixture
def per_test(pg_database):
    return pg_database()


@pytest.fixture(scope="module")
def per_module(pg_database):
    return pg_database()


@pytest.fixture(scope="session")
def per_session(pg_database):
    return pg_database()


@pytest.fixture
def via_request(request):
    return request.getfixturevalue("per_session")


def test_first(per_test, per_module, via_request, pg_database):
    SEEN.update(test=per_test, module=per_module, session=via_request, body=pg_database())


def test_second(pg_admin, per_module, pytestconfig):
    for drop in pytestconfig.pluginmanager.get_plugin(REAPER).drops:
        drop.result()
    with pg_admin.connect() as connection:
        existing = set(connection.execute(sa.text("SELECT datname FROM pg_database")).scalars())
    names = {owner: sa.make_url(url).database for owner, url in SEEN.items()}
    assert {names["module"], names["session"]} <= existing and not {names["test"], names["body"]} & existing
    print("CREATED", *names.values())
"""


def test_test_databases_are_dropped_when_their_fixture_or_test_ends_and_all_by_the_sessions_end(
    pg_admin: sa.Engine, tmp_path: Path
) -> None:
    """An inner session with the real fixtures: a test's databases go while the session runs, the rest by its end."""
    (tmp_path / "test_inner.py").write_text(INNER_SESSION)
    repository = Path(__file__).parents[2]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "tests.conftest", "test_inner.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(repository)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    created = next(line for line in run.stdout.splitlines() if "CREATED" in line).split("CREATED ")[1].split()
    assert len(created) == 4 and not set(created) & _databases(pg_admin, TEST_DATABASES)
