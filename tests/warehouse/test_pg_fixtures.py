"""The PostgreSQL test fixtures (tests/conftest.py): skip only when no server answers; clean up after crashes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL, database_name, drop_stale_databases, open_admin

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
