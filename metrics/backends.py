"""Where compiled statements run: DuckDB in worker threads, PostgreSQL through an asyncpg pool.

A backend takes SQL text with positional parameters and returns plain rows;
each enforces the statement timeout by cancelling the query, not just by
abandoning it. PostgreSQL is a server that can be down or hung, so every
wait on it is bounded: connecting, waiting for a pooled connection, the
statement (cancelled by the server itself past ``statement_timeout``) and
closing. An outage is ``BackendUnavailable`` (retry later), never a hang.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import duckdb
import sqlalchemy as sa
from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy.dialects.postgresql.asyncpg import dialect as AsyncpgDialect

from backend_urls import WAREHOUSE_URLS, Database, database_of, parse_url, postgresql_with
from metrics.errors import BackendUnavailable, QueryTimeout

DRIVER_ERRORS: tuple[type[Exception], ...] = (duckdb.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
"""What the drivers raise when a statement fails; the engine translates these, and only these."""

ANSWER_GRACE = 2.0
"""Seconds PostgreSQL gets past a statement's timeout to report its own cancellation; silence beyond is an outage."""
CONNECT_TIMEOUT = 5.0
"""Seconds to open one PostgreSQL connection (TCP, TLS, login); a server that accepts and stays silent is down."""
_OUTAGES: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)
"""Driver errors that mean the warehouse is down or restarting, not that the statement was wrong."""


class Backend(Protocol):
    dialect: sa.Dialect

    async def fetch(self, sql: str, params: list[Any], *, timeout: float) -> list[tuple[Any, ...]]: ...

    async def close(self) -> None: ...


class DuckDBBackend:
    """One database instance per process; each query gets its own cursor (connection) in a worker thread."""

    def __init__(self, path: str, *, read_only: bool = False) -> None:
        self.dialect = DuckDBDialect(paramstyle="qmark")
        if path != ":memory:" and not Path(path).is_file():
            raise BackendUnavailable(f"the DuckDB warehouse {path!r} does not exist; run `grace-metrics etl` first")
        # Opened the way the SQLAlchemy driver opens it: DuckDB shares a file within a process only
        # between connections of the same configuration, and the in-server ETL writes through that driver.
        try:
            self._driver = self.dialect.connect(path, read_only=read_only and path != ":memory:")
        except duckdb.Error as error:  # not a DuckDB file, or another process holds its lock
            raise BackendUnavailable(f"cannot open the DuckDB warehouse {path!r}: {error}") from None
        self._database: duckdb.DuckDBPyConnection = self._driver.duplicate()
        self._running: dict[asyncio.Task[list[tuple[Any, ...]]], duckdb.DuckDBPyConnection] = {}

    async def fetch(self, sql: str, params: list[Any], *, timeout: float) -> list[tuple[Any, ...]]:
        cursor = self._database.cursor()
        task = asyncio.create_task(asyncio.to_thread(lambda: cursor.execute(sql, params).fetchall()))
        self._running[task] = cursor
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            await _stop(task, cursor)
            raise QueryTimeout(
                f"the query ran longer than {timeout:g}s and was cancelled; narrow it or raise the timeout"
            ) from None
        finally:
            # Also when the caller is cancelled: a cursor closed while its statement runs fails the thread.
            await _stop(task, cursor)
            del self._running[task]
            cursor.close()

    async def close(self) -> None:
        """Stops the statements still running (nobody will read them), then closes the database."""
        for task, cursor in list(self._running.items()):
            await _stop(task, cursor)
        self._database.close()
        self._driver.close()


async def _stop(task: asyncio.Task[Any], cursor: duckdb.DuckDBPyConnection) -> None:
    """Interrupt until the statement has stopped: an interrupt that lands before it starts is lost."""
    while not task.done():
        cursor.interrupt()
        await asyncio.wait({task}, timeout=0.05)
    await asyncio.gather(task, return_exceptions=True)


class PostgresBackend:
    def __init__(self, pool: asyncpg.Pool, statement_timeout: float) -> None:
        self.dialect = AsyncpgDialect()
        self._pool = pool
        self._statement_timeout = statement_timeout

    @classmethod
    async def connect(
        cls, url: sa.URL, *, statement_timeout: float = 30.0, max_connections: int = 10
    ) -> PostgresBackend:
        """A pool whose sessions cancel their own statements past ``statement_timeout`` (also when we cannot)."""
        dsn = postgresql_with(url, "").render_as_string(hide_password=False)
        # No JIT: the time series a windowed query generates are estimated at 1000 rows each, and the JIT compile
        # such estimates trigger costs more than the query (1 s of 1.3 s for a previous-period comparison by day
        # and tier over 250k errors); plain aggregates gain from it too.
        server_settings = {"statement_timeout": _milliseconds(statement_timeout), "jit": "off"}
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT + ANSWER_GRACE):
                pool = await asyncpg.create_pool(
                    dsn, min_size=1, max_size=max_connections, timeout=CONNECT_TIMEOUT, server_settings=server_settings
                )
        except TimeoutError:
            raise BackendUnavailable(
                f"the PostgreSQL warehouse did not answer within {CONNECT_TIMEOUT:g}s; check that it is running"
            ) from None
        except (OSError, asyncpg.PostgresError) as exc:
            raise BackendUnavailable(f"cannot connect to the PostgreSQL warehouse: {exc}") from None
        return cls(pool, statement_timeout)

    async def fetch(self, sql: str, params: list[Any], *, timeout: float) -> list[tuple[Any, ...]]:
        """Rows within ``timeout`` plus a grace for the server to report its own cancellation, whatever it does."""
        connection: asyncpg.Connection | None = None
        answered = False
        try:
            async with asyncio.timeout(timeout + ANSWER_GRACE):
                connection = await self._pool.acquire()
                records = await self._fetch(connection, sql, params, timeout)
            answered = True
        except TimeoutError:
            raise BackendUnavailable(
                f"the PostgreSQL warehouse did not answer within {timeout + ANSWER_GRACE:g}s; retry later"
            ) from None
        except asyncpg.QueryCanceledError:
            answered = True  # the server cancelled it at statement_timeout and is still talking to us
            raise QueryTimeout(
                f"the query ran longer than {timeout:g}s and was cancelled; narrow it or raise the timeout"
            ) from None
        except _OUTAGES as exc:
            raise BackendUnavailable(
                f"the PostgreSQL warehouse is unavailable ({type(exc).__name__}); retry later"
            ) from exc
        finally:
            if connection is not None:
                await self._give_back(connection, healthy=answered)
        return [tuple(record) for record in records]

    async def _fetch(
        self, connection: asyncpg.Connection, sql: str, params: list[Any], timeout: float
    ) -> list[asyncpg.Record]:
        if timeout == self._statement_timeout:
            return await connection.fetch(sql, *params)
        async with connection.transaction(readonly=True):  # another limit for this statement only
            await connection.execute(f"SET LOCAL statement_timeout = {_milliseconds(timeout)}")
            return await connection.fetch(sql, *params)

    async def _give_back(self, connection: asyncpg.Connection, *, healthy: bool) -> None:
        """Back to the pool; a connection that did not answer is dropped (resetting it would wait on the server)."""
        try:
            if not healthy:
                connection.terminate()
            await self._pool.release(connection, timeout=CONNECT_TIMEOUT)
        except asyncpg.InterfaceError:
            pass  # asyncpg already took back a connection the server closed
        except (TimeoutError, *_OUTAGES):
            pass  # asyncpg terminated it; the pool opens a fresh one when needed

    async def close(self) -> None:
        """Close gracefully if the server answers in time, else drop the connections (shutdown must not hang)."""
        try:
            await asyncio.wait_for(self._pool.close(), CONNECT_TIMEOUT)
        except (TimeoutError, *_OUTAGES):
            self._pool.terminate()


def _milliseconds(seconds: float) -> str:
    """PostgreSQL's ``statement_timeout`` value; at least 1, since 0 would mean no limit."""
    return str(max(1, round(seconds * 1000)))


async def open_backend(url: str, *, statement_timeout: float = 30.0, read_only: bool = False) -> Backend:
    """A backend for a warehouse URL: ``duckdb:///PATH`` or ``postgresql[+driver]://...``.

    ``read_only`` opens a DuckDB file so that other read-only processes can open it too (DuckDB allows one
    writing process per file, and no reader beside it).
    """
    parsed = parse_url(url)
    database = None if parsed is None else database_of(parsed)
    if parsed is not None and database is Database.DUCKDB:
        return DuckDBBackend(parsed.database or ":memory:", read_only=read_only)
    if parsed is not None and database is Database.POSTGRESQL:
        return await PostgresBackend.connect(parsed, statement_timeout=statement_timeout)
    raise BackendUnavailable(f"warehouse URL {url!r} is not supported; use {WAREHOUSE_URLS}")
