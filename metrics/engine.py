"""The thin async layer between a request and a backend: compile, run, convert.

The compiler stays pure; this is the only place a compiled statement meets a
connection. Settings (timeout, row cap) come from the caller, read once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from metrics.backends import DRIVER_ERRORS, Backend, open_backend
from metrics.compiler import CompiledQuery, MetricRequest, compile_query
from metrics.compiler.members import compile_members
from metrics.compiler.spec import check_paging, predicates
from metrics.errors import BackendError, LimitExceeded
from metrics.registry import Registry, load_registry
from metrics.results import QueryResult

CACHED_FILTER_VALUES = 100
"""Requests with more filter values than this are compiled each time, so the cache of 256 stays small."""


@dataclass(frozen=True)
class EngineSettings:
    statement_timeout: float = 30.0
    max_rows: int = 10_000


class MetricsEngine:
    def __init__(self, backend: Backend, registry: Registry, settings: EngineSettings | None = None) -> None:
        self.backend = backend
        self.registry = registry
        self.settings = settings or EngineSettings()
        self._prepared = functools.lru_cache(maxsize=256)(self._prepare)

    @classmethod
    async def connect(
        cls, url: str, registry: Registry | None = None, settings: EngineSettings | None = None
    ) -> MetricsEngine:
        return cls(await open_backend(url), registry or load_registry(), settings)

    def compile(self, request: MetricRequest) -> CompiledQuery:
        return compile_query(request, self.registry, max_limit=self.settings.max_rows)

    def explain(self, request: MetricRequest) -> str:
        return self.compile(request).sql(self.backend.dialect)

    def render(self, compiled: CompiledQuery) -> tuple[str, list[Any]]:
        """SQL text and positional parameters for this backend; values stay bound.

        Without a limit, one row past the cap is fetched to detect a result
        that is too large without transferring all of it.
        """
        statement = compiled.statement
        if compiled.plan.limit is None:
            statement = statement.limit(self.settings.max_rows + 1)
        return self._render(statement)

    def _render(self, statement: sa.Select[Any]) -> tuple[str, list[Any]]:
        sql = statement.compile(dialect=self.backend.dialect, compile_kwargs={"render_postcompile": True})
        return sql.string, [sql.params[name] for name in sql.positiontup or ()]

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
        values = sum(len(p.value) if isinstance(p.value, (list, tuple)) else 1 for p in predicates(request.where))
        if values > CACHED_FILTER_VALUES:  # long lists make large entries and are rarely repeated
            return self._prepare(request)
        try:
            hash(request)
        except TypeError:  # a value that cannot be a key (a list inside a filter, say): compiled each time
            return self._prepare(request)
        return self._prepared(request)

    async def run(self, compiled: CompiledQuery) -> QueryResult:
        return await self._run(compiled, *self.render(compiled))

    async def _run(self, compiled: CompiledQuery, sql: str, params: list[Any]) -> QueryResult:
        raw = await self._fetch(sql, params)
        plan = compiled.plan
        if plan.limit is None and len(raw) > self.settings.max_rows:
            raise LimitExceeded(
                f"the query returns {await self._count(compiled)} rows, more than the maximum of "
                f"{self.settings.max_rows}; add filters, or page with limit and offset"
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
        return await self._run(*self.prepare(request))

    async def members(self, dimension: str, *, limit: int, offset: int = 0) -> QueryResult:
        """Members of a table dimension with their current attributes."""
        check_paging(limit, offset, self.settings.max_rows)
        now = datetime.now(UTC).replace(tzinfo=None)
        statement, columns = compile_members(self.registry.dimension(dimension), as_of=now, limit=limit, offset=offset)
        return QueryResult.from_rows(columns, await self.execute(statement), "UTC", counted=True)

    async def close(self) -> None:
        await self.backend.close()
