"""Request + registry -> one SQL statement. Pure: no connections, no I/O.

MetricRequest --resolve--> QuerySpec --plan_query--> QueryPlan --plan_to_sql--> Select
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from metrics.compiler.plan import QueryPlan
from metrics.compiler.planner import plan_query
from metrics.compiler.request import (
    And,
    DimensionRef,
    Filter,
    MetricCondition,
    MetricRequest,
    Not,
    Or,
    OrderBy,
    Predicate,
    TimeRange,
)
from metrics.compiler.routing import route, without_rollups
from metrics.compiler.scope import anonymise, apply_scope, suppressed_rows
from metrics.compiler.spec import resolve
from metrics.compiler.to_sql import OutputColumn, plan_to_sql
from metrics.registry import Registry


@dataclass(frozen=True)
class CompiledQuery:
    statement: sa.Select[Any]
    count: sa.Select[Any]
    """Counts the rows before limit and offset, for a page that is empty or a result over the row cap."""
    columns: tuple[OutputColumn, ...]
    plan: QueryPlan

    @property
    def timezone(self) -> str:
        return self.plan.timezone

    def sql(self, dialect: sa.Dialect) -> str:
        """The SQL with values inlined, for people to read; never for execution."""
        return str(self.statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def compile_query(
    request: MetricRequest,
    registry: Registry,
    *,
    max_limit: int | None = None,
    rollups: frozenset[str] | None = frozenset(),
) -> CompiledQuery:
    """``rollups``: the rollups the warehouse holds, current with the registry, which the plan may read where they
    give exactly the same answer; None: rollups are off (the plan says so)."""
    registry = registry.extended(request.derived) if request.derived else registry
    scope = request.scope
    if scope is not None:
        request = apply_scope(request, registry, scope)
    plan = plan_query(resolve(request, registry, max_limit=max_limit), registry)
    if scope is not None and scope.k_anonymity:
        plan = anonymise(plan, registry, scope.k_anonymity)
    plan = route(plan, registry, rollups) if rollups is not None and request.rollups else without_rollups(plan)
    sql = plan_to_sql(plan, registry)
    return CompiledQuery(sql.statement, sql.count, sql.columns, plan)


__all__ = [
    "And",
    "CompiledQuery",
    "DimensionRef",
    "Filter",
    "MetricCondition",
    "MetricRequest",
    "Not",
    "Or",
    "OrderBy",
    "OutputColumn",
    "Predicate",
    "TimeRange",
    "compile_query",
    "suppressed_rows",
]
