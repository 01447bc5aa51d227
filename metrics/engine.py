"""The thin async layer between a request and a backend: compile, run, convert.

The compiler stays pure; this is the only place a compiled statement meets a
connection. Settings (timeout, row cap) come from the caller, read once.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from metrics.backends import DRIVER_ERRORS, Backend, open_backend
from metrics.compiler import CompiledQuery, Filter, MetricRequest, OutputColumn, compile_query
from metrics.compiler.members import compile_members
from metrics.compiler.rollup_tables import current_rollups
from metrics.compiler.spec import check_paging, predicates
from metrics.data_version import VERSION_QUERY, DataVersion
from metrics.errors import BackendError, LimitExceeded
from metrics.model import DataType
from metrics.policy import Scope
from metrics.registry import Registry, load_registry
from metrics.result_cache import CacheSettings, ResultCache
from metrics.results import QueryResult
from metrics.rollup_store import DEFINITIONS_TABLE

MAX_PARAMETERS = 32_000
"""Bound values one statement may carry: PostgreSQL's protocol takes at most 32,767, and DuckDB is held to the same
so that a request answers alike on both (a filter is repeated in the query of every fact it applies to)."""
CACHED_FILTER_VALUES = 100
"""Requests with more filter values than this are compiled each time (in a thread), so the cache of 256 stays small."""

COUNT_COLUMNS = (OutputColumn("count", "Count", DataType.INTEGER, is_metric=False),)


def _filter_values(request: MetricRequest) -> int:
    return sum(len(p.value) if isinstance(p.value, (list, tuple)) else 1 for p in predicates(request.where))


@dataclass(frozen=True)
class EngineSettings:
    statement_timeout: float = 30.0
    max_rows: int | None = 10_000
    """Largest limit, and largest result without one (LimitExceeded past it); None: no cap (library use)."""
    read_only: bool = True
    """Open a DuckDB file read-only, so other processes may read it too; False only where this process writes it."""
    rollups: bool = True
    """Read rollups where they give exactly the base facts' answer (``GRACE_METRICS_ROLLUPS=off``: never)."""
    cache: CacheSettings | None = CacheSettings()
    """Where answers are kept for repeated requests (``metrics.result_cache``); None: every request executes."""


_UNREAD = object()
"""No data version read yet: the first request reads it, and which rollups the warehouse holds."""


class MetricsEngine:
    def __init__(self, backend: Backend, registry: Registry, settings: EngineSettings | None = None) -> None:
        self.backend = backend
        self.registry = registry
        self.settings = settings or EngineSettings()
        self._prepared = functools.lru_cache(maxsize=256)(self._prepare)
        self.rollups: frozenset[str] = frozenset()
        """The rollups the warehouse holds, current with the registry (``load_rollups``)."""
        self.cache = None if self.settings.cache is None else ResultCache(self.settings.cache)
        self._version = DataVersion(functools.partial(self._fetch, *self._render(VERSION_QUERY)))
        self._rollups_version: object = _UNREAD
        """The data version at which ``rollups`` was read (by the first request)."""
        self._rollups_loading = asyncio.Lock()

    @classmethod
    async def connect(
        cls, url: str, registry: Registry | None = None, settings: EngineSettings | None = None
    ) -> MetricsEngine:
        settings = settings or EngineSettings()
        backend = await open_backend(url, statement_timeout=settings.statement_timeout, read_only=settings.read_only)
        return cls(backend, registry or load_registry(), settings)

    async def load_rollups(self) -> frozenset[str]:
        """Learn which rollups the warehouse holds with the registry's definitions (again after an ETL run)."""
        table = DEFINITIONS_TABLE
        exists = sa.select(sa.func.count()).where(
            sa.literal_column("table_name") == table.name, sa.literal_column("table_schema") == sa.func.current_schema()
        )
        [(found,)] = await self.execute(exists.select_from(sa.text("information_schema.tables")))
        recorded = await self.execute(sa.select(table.c.name, table.c.fingerprint)) if found else []
        self.rollups = current_rollups(((str(name), str(value)) for name, value in recorded), self.registry)
        self._prepared.cache_clear()
        return self.rollups

    async def data_version(self) -> str | None:
        """The warehouse's data version now (``metrics.data_version``); when it changed, which rollups the warehouse
        holds is read again first, so a request never reads a rollup another process rebuilt or dropped since."""
        if self.cache is None and not self.settings.rollups:
            return None
        version = await self._version.current()
        if version != self._rollups_version:
            async with self._rollups_loading:  # requests arriving meanwhile wait for the rollups, then compile
                if version != self._rollups_version:
                    await self.load_rollups()
                    self._rollups_version = version
        return version

    def compile(self, request: MetricRequest) -> CompiledQuery:
        rollups = self.rollups if self.settings.rollups else None
        return compile_query(request, self.registry, max_limit=self.settings.max_rows, rollups=rollups)

    async def explain(self, request: MetricRequest) -> str:
        """The plan (which rollup or fact table each fact reads, and why) and the SQL it renders."""
        await self.data_version()  # which rollups the warehouse holds now
        compiled = self.compile(request)
        return f"{compiled.plan}\n\n{compiled.sql(self.backend.dialect)}"

    def render(self, compiled: CompiledQuery) -> tuple[str, list[Any]]:
        """SQL text and positional parameters for this backend; values stay bound.

        Without a limit, one row past the cap is fetched to detect a result
        that is too large without transferring all of it.
        """
        statement = compiled.statement
        if compiled.plan.limit is None and self.settings.max_rows is not None:
            statement = statement.limit(self.settings.max_rows + 1)
        return self._render(statement)

    def _render(self, statement: sa.Select[Any]) -> tuple[str, list[Any]]:
        """Linear in the number of values: ``sql.params`` builds a fresh dict on each access, so it is read once."""
        sql = statement.compile(dialect=self.backend.dialect, compile_kwargs={"render_postcompile": True})
        values = sql.params
        params = [values[name] for name in sql.positiontup or ()]
        if len(params) > MAX_PARAMETERS:
            raise LimitExceeded(
                f"the query needs {len(params):,} bound values, more than the maximum of {MAX_PARAMETERS:,} "
                "(filters repeat for each fact of the selected metrics); use fewer filter values or fewer facts"
            )
        return sql.string, params

    async def execute(self, statement: sa.Select[Any], *, timeout: float | None = None) -> list[tuple[Any, ...]]:
        """Rows of any statement (a health check, say), through the same error boundary as metric queries."""
        return await self._fetch(*self._render(statement), timeout=timeout)

    async def _fetch(self, sql: str, params: list[Any], *, timeout: float | None = None) -> list[tuple[Any, ...]]:
        """The one place driver exceptions become ``BackendError``; callers only ever see ``MetricsError``."""
        try:
            return await self.backend.fetch(sql, params, timeout=timeout or self.settings.statement_timeout)
        except DRIVER_ERRORS as exc:
            # The driver's text (which may quote SQL) stays on the cause, for logs and tracebacks.
            raise BackendError(
                f"the warehouse could not run the query ({type(exc).__module__}.{type(exc).__name__})"
            ) from exc

    def _prepare(self, request: MetricRequest) -> tuple[CompiledQuery, str, list[Any]]:
        compiled = self.compile(request)
        return (compiled, *self.render(compiled))

    def prepare(self, request: MetricRequest) -> tuple[CompiledQuery, str, list[Any]]:
        """The compiled query, SQL and parameters of a request, once per distinct request (an LRU).

        Dashboards send the same requests again and again, and compiling and rendering cost some
        milliseconds each time; requests are frozen values, so equal ones share their SQL.
        """
        if _filter_values(request) > CACHED_FILTER_VALUES:  # long lists make large entries and are rarely repeated
            return self._prepare(request)
        return self._cached(request)

    def _cached(self, request: MetricRequest) -> tuple[CompiledQuery, str, list[Any]]:
        try:
            hash(request)
        except TypeError:  # a value that cannot be a key (a list inside a filter, say): compiled each time
            return self._prepare(request)
        return self._prepared(request)

    async def run(self, compiled: CompiledQuery) -> QueryResult:
        # Rendering thousands of filter values takes a while: in a thread, other requests go on meanwhile.
        return await self._run(compiled, *await asyncio.to_thread(self.render, compiled))

    async def _run(self, compiled: CompiledQuery, sql: str, params: list[Any]) -> QueryResult:
        raw = await self._fetch(sql, params)
        plan = compiled.plan
        cap = self.settings.max_rows
        if plan.limit is None and cap is not None and len(raw) > cap:
            raise LimitExceeded(
                f"the query returns {await self._count(compiled)} rows, more than the maximum of "
                f"{cap}; add filters, or page with limit and offset"
            )
        result = QueryResult.from_rows(compiled.columns, raw, compiled.timezone, counted=plan.total_count)
        if plan.total_count and not raw and plan.offset:
            # A page past the last row has no row to carry the window's count.
            return replace(result, total_count=await self._count(compiled))
        return result

    async def _count(self, compiled: CompiledQuery) -> int:
        [(count,)] = await self.execute(compiled.count)
        return int(count)

    async def query(self, request: MetricRequest) -> QueryResult:
        version = await self.data_version()
        if _filter_values(request) > CACHED_FILTER_VALUES:
            # Thousands of values take a while to compile and render: in a thread, other requests go on meanwhile.
            compiled, sql, params = await asyncio.to_thread(self._prepare, request)
        else:
            compiled, sql, params = self._cached(request)
        return await self._answer(
            version,
            compiled.columns,
            compiled.timezone,
            sql,
            params,
            request.scope,
            lambda: self._run(compiled, sql, params),
        )

    async def count(self, statement: sa.Select[Any], scope: Scope | None) -> int:
        """What a ``count(*)`` statement of ``scope``'s request counts, through the result cache like any answer."""
        sql, params = self._render(statement)

        async def execute() -> QueryResult:
            return QueryResult.from_rows(COUNT_COLUMNS, await self._fetch(sql, params), "UTC")

        result = await self._answer(await self.data_version(), COUNT_COLUMNS, "UTC", sql, params, scope, execute)
        return result.values[0][0]

    async def _answer(
        self,
        version: str | None,
        columns: tuple[OutputColumn, ...],
        timezone: str,
        sql: str,
        params: list[Any],
        scope: Scope | None,
        execute: Callable[[], Awaitable[QueryResult]],
    ) -> QueryResult:
        """From the result cache where it holds this answer at the current data version; executed (and kept) else."""
        key = None if self.cache is None else self.cache.key(version, sql, params, scope, columns, timezone)
        if self.cache is None or key is None:
            return await execute()
        found = await self.cache.get(key, columns, timezone)
        if found is not None:
            return replace(found, from_cache=True)
        result = replace(await execute(), from_cache=False)
        await self.cache.put(key, result)
        return result

    async def cached(self, request: MetricRequest) -> bool | None:
        """Whether the result cache now holds the answer to ``request``; None where it would not be consulted."""
        version = await self.data_version()
        compiled, sql, params = self.prepare(request)
        columns, timezone = compiled.columns, compiled.timezone
        key = None if self.cache is None else self.cache.key(version, sql, params, request.scope, columns, timezone)
        if self.cache is None or key is None:
            return None
        return await self.cache.get(key, columns, timezone) is not None

    async def members(self, dimension: str, *, limit: int, offset: int = 0, where: Filter | None = None) -> QueryResult:
        """Members of a table dimension with their current attributes; ``where``: those a caller's scope admits."""
        check_paging(limit, offset, self.settings.max_rows)
        now = datetime.now(UTC).replace(tzinfo=None)
        statement, columns = compile_members(
            self.registry.dimension(dimension), as_of=now, limit=limit, offset=offset, where=where
        )
        return QueryResult.from_rows(columns, await self.execute(statement), "UTC", counted=True)

    async def close(self) -> None:
        self._version.close()
        if self.cache is not None:
            await self.cache.close()
        await self.backend.close()
