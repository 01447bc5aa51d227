"""The thin async layer between a request and a backend: compile, run, convert.

The compiler stays pure; this is the only place a compiled statement meets a
connection. Settings (timeout, row cap) come from the caller, read once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from metrics.backends import DRIVER_ERRORS, Backend, open_backend
from metrics.compiler import CompiledQuery, Filter, MetricRequest, compile_query
from metrics.compiler.members import compile_members
from metrics.compiler.spec import check_paging
from metrics.errors import BackendError, LimitExceeded
from metrics.registry import Registry, load_registry
from metrics.results import QueryResult


@dataclass(frozen=True)
class EngineSettings:
    statement_timeout: float = 30.0
    max_rows: int = 10_000


class MetricsEngine:
    def __init__(self, backend: Backend, registry: Registry, settings: EngineSettings | None = None) -> None:
        self.backend = backend
        self.registry = registry
        self.settings = settings or EngineSettings()

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

    async def run(self, compiled: CompiledQuery) -> QueryResult:
        sql, params = self.render(compiled)
        raw = await self._fetch(sql, params)
        result = QueryResult.from_rows(compiled.columns, raw, compiled.timezone)
        if compiled.plan.limit is None and result.total_count > self.settings.max_rows:
            raise LimitExceeded(
                f"the query returns {result.total_count} rows, more than the maximum of {self.settings.max_rows}; "
                "add filters, or page with limit and offset"
            )
        return result

    async def query(self, request: MetricRequest) -> QueryResult:
        return await self.run(self.compile(request))

    async def members(self, dimension: str, *, limit: int, offset: int = 0, where: Filter | None = None) -> QueryResult:
        """Members of a table dimension with their current attributes; ``where``: those a caller's scope admits."""
        check_paging(limit, offset, self.settings.max_rows)
        now = datetime.now(UTC).replace(tzinfo=None)
        statement, columns = compile_members(
            self.registry.dimension(dimension), as_of=now, limit=limit, offset=offset, where=where
        )
        return QueryResult.from_rows(columns, await self.execute(statement), "UTC")

    async def close(self) -> None:
        await self.backend.close()
