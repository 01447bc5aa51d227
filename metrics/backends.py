"""Where compiled statements run: DuckDB in worker threads, PostgreSQL through an asyncpg pool.

A backend takes SQL text with positional parameters and returns plain rows;
each enforces the statement timeout by cancelling the query, not just by
abandoning it.
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
from sqlalchemy.engine import make_url

from metrics.errors import BackendError, QueryTimeout

_POSTGRES = {"postgresql", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2", "postgres"}


DRIVER_ERRORS: tuple[type[Exception], ...] = (duckdb.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
"""What the drivers raise when a statement fails; the engine translates these, and only these."""


class BackendUnavailable(BackendError):
    pass


class Backend(Protocol):
    dialect: sa.Dialect

    async def fetch(self, sql: str, params: list[Any], *, timeout: float) -> list[tuple[Any, ...]]: ...

    async def close(self) -> None: ...


class DuckDBBackend:
    """One database instance per process; each query gets its own cursor (connection) in a worker thread."""

    def __init__(self, path: str) -> None:
        self.dialect = DuckDBDialect(paramstyle="qmark")
        if path != ":memory:" and not Path(path).is_file():
            raise BackendUnavailable(f"the DuckDB warehouse {path!r} does not exist; run `grace-metrics etl` first")
        # Opened the way the SQLAlchemy driver opens it: DuckDB shares a file within a process only
        # between connections of the same configuration, and the in-server ETL writes through that driver.
        try:
            self._driver = self.dialect.connect(path)
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
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.dialect = AsyncpgDialect()
        self._pool = pool

    @classmethod
    async def connect(cls, url: sa.URL, *, max_connections: int = 10) -> PostgresBackend:
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            # No JIT: the time series a windowed query generates are estimated at 1000 rows each, and the JIT
            # compile such estimates trigger costs more than the query (1 s of 1.3 s for a previous-period
            # comparison by day and tier over 250k errors); plain aggregates gain from it too.
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_connections, server_settings={"jit": "off"})
        except (OSError, asyncpg.PostgresError) as exc:
            raise BackendUnavailable(f"cannot connect to the PostgreSQL warehouse: {exc}") from None
        return cls(pool)

    async def fetch(self, sql: str, params: list[Any], *, timeout: float) -> list[tuple[Any, ...]]:
        async with self._pool.acquire() as connection:
            try:
                records = await connection.fetch(sql, *params, timeout=timeout)
            except TimeoutError:
                raise QueryTimeout(
                    f"the query ran longer than {timeout:g}s and was cancelled; narrow it or raise the timeout"
                ) from None
        return [tuple(record) for record in records]

    async def close(self) -> None:
        await self._pool.close()


async def open_backend(url: str) -> Backend:
    """A backend for a warehouse URL: ``duckdb:///PATH`` or ``postgresql[+driver]://...``."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        parsed = None
    if parsed is not None and parsed.drivername == "duckdb":
        return DuckDBBackend(parsed.database or ":memory:")
    if parsed is not None and parsed.drivername in _POSTGRES:
        return await PostgresBackend.connect(parsed)
    raise BackendUnavailable(
        f"warehouse URL {url!r} is not supported; use duckdb:///PATH or postgresql://USER@HOST/DATABASE"
    )
