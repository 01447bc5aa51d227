"""Engines for the source and the warehouse, built from SQLAlchemy URLs.

The ETL is synchronous: it streams from the source and writes in bulk, so it
uses psycopg for PostgreSQL whatever driver the URL names (``asyncpg`` URLs
are for the query server). Driver errors on opening either database become
``SourceUnavailable`` or ``WarehouseUnavailable`` here, at this one boundary.
A PostgreSQL warehouse database that does not exist is created when the
login may create databases, as a DuckDB file is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from backend_urls import WAREHOUSE_URLS, Database, database_of, parse_url, postgresql_with
from warehouse import schema
from warehouse.errors import LockTimeout, SourceUnavailable, UnsupportedURL, WarehouseUnavailable

_duckdb_file_locks: dict[Path, threading.Lock] = {}
"""One lock per DuckDB file: threads of one process share DuckDB's database instance, so its file lock cannot
keep them apart (the server runs the ETL in a worker thread)."""


def _parse(url: str, role: str, supported: str) -> tuple[sa.URL, Database | None]:
    parsed = parse_url(url)
    if parsed is None:
        raise UnsupportedURL(url, role, supported)
    return parsed, database_of(parsed)


def display_url(url: sa.URL | str) -> str:
    """The URL as it may be printed: without its password."""
    return (sa.make_url(url) if isinstance(url, str) else url).render_as_string(hide_password=True)


def source_engine(url: str) -> sa.Engine:
    """A read-only engine on the operational database; a missing SQLite file is an error, never created."""
    supported = "sqlite:///PATH or postgresql://USER@HOST/DATABASE"
    parsed, database = _parse(url, "source", supported)
    if database is Database.SQLITE:
        path = Path(parsed.database or "")
        if not parsed.database or not path.is_file():
            raise SourceUnavailable(f"source SQLite file {str(path)!r} does not exist.")
        return sa.create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")
    if database is Database.POSTGRESQL:
        return sa.create_engine(postgresql_with(parsed, "psycopg"))
    raise UnsupportedURL(url, "source", supported)


def warehouse_url(url: str) -> sa.URL:
    """The synchronous URL of a warehouse: a ``duckdb:///PATH`` file in an existing directory, or PostgreSQL."""
    parsed, database = _parse(url, "warehouse", WAREHOUSE_URLS)
    if database is Database.DUCKDB:
        if not parsed.database or parsed.database == ":memory:":
            raise UnsupportedURL(
                url,
                "warehouse",
                WAREHOUSE_URLS,
                reason="it names no file, and an in-memory warehouse is lost when the run ends",
            )
        directory = Path(parsed.database).parent
        if not directory.is_dir():
            raise WarehouseUnavailable(
                f"cannot create the DuckDB warehouse {parsed.database!r}: the directory {str(directory)!r} does not "
                "exist; create it or choose another path."
            )
        return parsed
    if database is Database.POSTGRESQL:
        return postgresql_with(parsed, "psycopg")
    raise UnsupportedURL(url, "warehouse", WAREHOUSE_URLS)


def missing_duckdb_file(url: str) -> bool:
    """Whether ``url`` names a DuckDB file that does not exist yet (no ETL run has created it)."""
    parsed = parse_url(url)
    if parsed is None:
        return False  # not ours to judge: whoever opens it reports the URL
    return (
        database_of(parsed) is Database.DUCKDB
        and parsed.database not in (None, "", ":memory:")
        and not Path(parsed.database or "").exists()
    )


def warehouse_loaded(url: str) -> bool:
    """Whether an ETL run has created the star schema at ``url``; a missing file or database has not."""
    if missing_duckdb_file(url):
        return False
    engine = warehouse_engine(url)
    try:
        with _open(engine, time.monotonic(), 0) as connection:
            return sa.inspect(connection).has_table(schema.etl_runs.name)
    finally:
        engine.dispose()


def warehouse_engine(url: str) -> sa.Engine:
    return sa.create_engine(warehouse_url(url), poolclass=sa.pool.NullPool)


def _lock_timeout(engine: sa.Engine, timeout: float) -> LockTimeout:
    return LockTimeout(
        f"another process held the DuckDB warehouse {engine.url.database} for {timeout:g}s: an ETL run, or a "
        "server, notebook or script reading it (DuckDB lets one process write a file, with no reader beside it). "
        "Stop it or raise --lock-timeout; to load while serving, use `serve --source` or PostgreSQL."
    )


def _missing_database(error: sa.exc.DBAPIError, name: str) -> bool:
    """psycopg gives no SQLSTATE for errors while connecting, so the server's message is the only mark."""
    return f'database "{name}" does not exist' in str(error.orig)


def _create_database(url: sa.URL) -> None:
    """Create the warehouse database, connected to the server's ``postgres`` database with the same login."""
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = url.database or ""
    try:
        with admin.connect() as connection:
            if connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
                return  # another run created it meanwhile
            connection.execute(sa.text(f"CREATE DATABASE {admin.dialect.identifier_preparer.quote(name)}"))
    except sa.exc.DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "42P04":  # duplicate_database: a concurrent run won the race
            return
        raise WarehouseUnavailable(
            f"the warehouse database {name!r} does not exist on {url.host or 'localhost'}:{url.port or 5432} and "
            f"could not be created as {url.username or 'this user'}: {str(exc.orig).strip()}. Create it (for example "
            f"`createdb -h {url.host or 'localhost'} -p {url.port or 5432} -U <admin> {name}`, owned by "
            f"{url.username or 'the ETL user'}) and run again."
        ) from None
    finally:
        admin.dispose()


def _open(engine: sa.Engine, deadline: float, timeout: float) -> sa.Connection:
    """Open the warehouse, waiting while another process holds a DuckDB file's lock; create a missing database."""
    created = False
    while True:
        try:
            return engine.connect()
        except sa.exc.DBAPIError as exc:
            missing = engine.dialect.name == "postgresql" and _missing_database(exc, engine.url.database or "")
            if missing and not created:
                _create_database(engine.url)
                created = True
                continue
            if engine.dialect.name != "duckdb" or "lock" not in str(exc.orig).lower():
                raise WarehouseUnavailable(
                    f"cannot open the warehouse {display_url(engine.url)}: {str(exc.orig).strip()}. Check that the "
                    "server is running and the URL (host, port, database, user) is right, or that the file is a "
                    "DuckDB database you may write."
                ) from None
            if time.monotonic() > deadline:
                raise _lock_timeout(engine, timeout) from None
            time.sleep(0.2)


def _advisory_lock(connection: sa.Connection, timeout: float) -> None:
    connection.execute(sa.text("SELECT set_config('lock_timeout', :ms, false)"), {"ms": f"{int(timeout * 1000)}ms"})
    try:
        connection.execute(sa.text("SELECT pg_advisory_lock(hashtext('grace_metrics_etl'))"))
    except sa.exc.OperationalError:
        raise LockTimeout(
            f"another ETL run held the PostgreSQL warehouse lock for {timeout:g}s; raise --lock-timeout."
        ) from None
    connection.execute(sa.text("SELECT set_config('lock_timeout', '0', false)"))
    connection.commit()


@contextmanager
def exclusive_connection(engine: sa.Engine, *, timeout: float) -> Iterator[sa.Connection]:
    """A connection that holds the warehouse's ETL lock until the block ends.

    DuckDB: a lock per file within the process, then DuckDB's own file lock
    against other processes (waiting for the open is the wait for the lock).
    PostgreSQL: a session-level advisory lock.
    """
    deadline = time.monotonic() + timeout
    file_lock = None
    if engine.dialect.name == "duckdb":
        file_lock = _duckdb_file_locks.setdefault(Path(engine.url.database or "").resolve(), threading.Lock())
        if not file_lock.acquire(timeout=timeout):
            raise _lock_timeout(engine, timeout)
    try:
        with _open(engine, deadline, timeout) as connection:
            if engine.dialect.name == "postgresql":
                _advisory_lock(connection, timeout)
            yield connection
    finally:
        if file_lock is not None:
            file_lock.release()
