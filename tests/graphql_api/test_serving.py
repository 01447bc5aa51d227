"""Serving a warehouse the way a new user does: shared DuckDB files, a warehouse loaded on first start, the address.

Real server processes over real files and databases: a server without the
in-server ETL opens DuckDB read-only, so two servers and the Python client
read one file at once; ``serve --source`` creates and loads a warehouse that
does not exist yet (a DuckDB file, a PostgreSQL database) before it listens.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from metrics.client import MetricsClient
from tests.conftest import TEST_DATABASES, database_name
from tests.graphql_api.test_server import start_server
from tests.small_source import build_source
from warehouse.errors import WarehouseUnavailable
from warehouse.etl import run_etl

COUNT = "{ metrics { rows { verificationCount } } }"
SIXTY = {"metrics": {"rows": [{"verificationCount": 60}]}}


def test_two_servers_and_the_python_client_share_one_duckdb_file(tmp_path: Path) -> None:
    source = build_source(f"sqlite:///{tmp_path / 'source.sqlite'}")
    warehouse = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    run_etl(source.url, warehouse, hash_key="k")
    source.dispose()
    # Each server keeps its audit log in a file of its own: the warehouse file has no writer.
    first_audit = {"GRACE_METRICS_AUDIT_URL": f"duckdb:///{tmp_path / 'first-audit.duckdb'}"}
    second_audit = {"GRACE_METRICS_AUDIT_URL": f"duckdb:///{tmp_path / 'second-audit.duckdb'}"}
    for first in start_server(tmp_path / "first.log", "--warehouse", warehouse, env=first_audit):
        for second in start_server(tmp_path / "second.log", "--warehouse", warehouse, env=second_audit):
            with MetricsClient(warehouse) as client:
                assert client.query(["verification_count"]).to_pylist() == [{"verification_count": 60}]
                assert first.graphql(COUNT)["data"] == second.graphql(COUNT)["data"] == SIXTY
        port = first.base.rsplit(":", 1)[1]
        assert re.search(
            rf"serving http://127\.0\.0\.1:{port}/graphql .* http://127\.0\.0\.1:{port}/healthz", first.log.read_text()
        )


def test_serve_with_a_source_loads_a_duckdb_warehouse_that_does_not_exist(tmp_path: Path) -> None:
    source = build_source(f"sqlite:///{tmp_path / 'source.sqlite'}")
    warehouse = f"duckdb:///{tmp_path / 'new.duckdb'}"
    for server in start_server(tmp_path / "server.log", "--warehouse", warehouse, "--source", source.url):
        assert server.graphql(COUNT)["data"] == SIXTY
    source.dispose()


def test_serve_with_a_source_creates_a_postgresql_warehouse_database(tmp_path: Path, pg_admin: sa.Engine) -> None:
    source = build_source(f"sqlite:///{tmp_path / 'source.sqlite'}")
    name = database_name(TEST_DATABASES, datetime.now(UTC))  # dropped below, or as stale by a later session
    url = pg_admin.url.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    try:
        for server in start_server(tmp_path / "server.log", "--warehouse", url, "--source", source.url):
            assert server.graphql(COUNT)["data"] == SIXTY
    finally:
        source.dispose()
        with pg_admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def no_createdb_role(pg_admin: sa.Engine) -> Iterator[Callable[[str], str]]:
    """A login that may not create databases; its URL for a database name."""
    role = f"gm_nocreate_{uuid.uuid4().hex[:8]}"
    with pg_admin.connect() as connection:
        connection.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
        connection.execute(sa.text(f'CREATE ROLE "{role}" LOGIN NOCREATEDB'))
    yield lambda database: pg_admin.url.set(username=role, database=database).render_as_string(hide_password=False)
    with pg_admin.connect() as connection:
        connection.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))


def test_etl_into_a_database_it_may_not_create_says_how_to_create_it(
    tmp_path: Path, no_createdb_role: Callable[[str], str]
) -> None:
    source = build_source(f"sqlite:///{tmp_path / 'source.sqlite'}")
    with pytest.raises(WarehouseUnavailable) as raised:
        run_etl(source.url, no_createdb_role("gm_test_never_created"), hash_key="k")
    source.dispose()
    message = str(raised.value)
    assert "the warehouse database 'gm_test_never_created' does not exist" in message
    assert "could not be created as gm_nocreate_" in message and "createdb -h" in message
