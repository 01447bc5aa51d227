"""Engines for the source and the warehouse, built from SQLAlchemy URLs.

The ETL is synchronous: it streams from the source and writes in bulk, so it
uses psycopg for PostgreSQL whatever driver the URL names (``asyncpg`` URLs
are for the query server).
"""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from warehouse.errors import LockTimeout, SourceUnavailable, UnsupportedURL

_POSTGRES_DRIVERS = {"postgresql", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2", "postgres"}


def _parse(url: str, role: str, supported: str) -> sa.URL:
    try:
        return make_url(url)
    except sa.exc.ArgumentError:
        raise UnsupportedURL(url, role, supported) from None


def source_engine(url: str) -> sa.Engine:
    """A read-only engine on the operational database; a missing SQLite file is an error, never created."""
    supported = "sqlite:///PATH or postgresql://USER@HOST/DATABASE"
    parsed = _parse(url, "source", supported)
    if parsed.drivername == "sqlite":
        path = Path(parsed.database or "")
        if not parsed.database or not path.is_file():
            raise SourceUnavailable(f"source SQLite file {str(path)!r} does not exist.")
        return sa.create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")
    if parsed.drivername in _POSTGRES_DRIVERS:
        return sa.create_engine(parsed.set(drivername="postgresql+psycopg"))
    raise UnsupportedURL(url, "source", supported)


def warehouse_url(url: str) -> sa.URL:
    """The synchronous URL of a warehouse: ``duckdb:///PATH`` or PostgreSQL via psycopg."""
    supported = "duckdb:///PATH or postgresql://USER@HOST/DATABASE"
    parsed = _parse(url, "warehouse", supported)
    if parsed.drivername == "duckdb":
        return parsed
    if parsed.drivername in _POSTGRES_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    raise UnsupportedURL(url, "warehouse", supported)


def warehouse_engine(url: str) -> sa.Engine:
    return sa.create_engine(warehouse_url(url), poolclass=sa.pool.NullPool)


def connect_exclusively(engine: sa.Engine, *, timeout: float) -> sa.Connection:
    """A connection that holds the warehouse's ETL lock until it closes.

    DuckDB lets one process write a file and locks it on open, so waiting for
    the open is the lock; PostgreSQL gets a session-level advisory lock.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = engine.connect()
            break
        except sa.exc.DBAPIError as exc:
            if engine.dialect.name != "duckdb" or "lock" not in str(exc.orig).lower():
                raise
            if time.monotonic() > deadline:
                raise LockTimeout(
                    f"the DuckDB warehouse {engine.url.database} stayed locked by another process for "
                    f"{timeout:.0f}s; stop the other writer or raise --lock-timeout."
                ) from None
            time.sleep(0.2)
    if engine.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT set_config('lock_timeout', :ms, false)"), {"ms": f"{int(timeout * 1000)}ms"})
        try:
            connection.execute(sa.text("SELECT pg_advisory_lock(hashtext('grace_metrics_etl'))"))
        except sa.exc.OperationalError:
            connection.close()
            raise LockTimeout(
                f"another ETL run held the PostgreSQL warehouse lock for {timeout:.0f}s; raise --lock-timeout."
            ) from None
        connection.execute(sa.text("SELECT set_config('lock_timeout', '0', false)"))
        connection.commit()
    return connection
