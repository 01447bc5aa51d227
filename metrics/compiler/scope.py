"""Applying a caller's access scope: to a request before the compiler sees it, and for research, to its plan.

Every name the request uses (metrics, selected and filtered dimensions, and
through them having and order, which may only name selected fields) is
checked against the caller's view of the registry, so a hidden name fails
with ``Forbidden`` and every message lists visible names only. The grants
that admit all of those names give the rows: their row filters, OR-ed, are
AND-ed onto ``where``, which the plan applies to every fact of the query,
drill-across included. The scope is part of the request, so the result cache
and the loaders never share an answer between callers of different scopes.

k-anonymity (the research role) is a plan rewrite: each fact with users also
counts its distinct users per row (``_k_users_<fact>``), and a ``having``
condition keeps the rows where every such count reaches k. The condition runs
in SQL before the window that counts rows, so ``totalCount`` counts released
rows only and paging never sees a suppressed row. How many rows were left out
is a second, separate count (``suppressed_rows``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from metrics.compiler.fact_query import label
from metrics.compiler.plan import FactAggregate, Leaf, MetricOutput, QueryPlan
from metrics.compiler.planner import plan_query
from metrics.compiler.request import And, MetricCondition, MetricRequest
from metrics.compiler.spec import predicates, resolve
from metrics.compiler.to_sql import plan_to_sql
from metrics.errors import Forbidden
from metrics.model import Aggregation, DataType, FilterOp, Measure
from metrics.registry import Registry

if TYPE_CHECKING:  # metrics.policy builds on the compiler's request types; the import stays one way at run time
    from metrics.policy import Scope


def apply_scope(request: MetricRequest, registry: Registry, scope: Scope) -> MetricRequest:
    """The request restricted to the caller's rows, without its scope; raises ``Forbidden`` for what it may not use.
    ``registry`` holds the request's own metrics (``request.derived``) already."""
    from metrics.policy import ScopedRegistry, scoped_view, union

    if request.derived:
        scope = _with_derived(scope, request, registry)
    view = ScopedRegistry(registry, scope) if request.derived else scoped_view(registry, scope)
    resolve(replace(request, scope=None), view)
    dimensions = {ref.dimension for ref in request.dimensions} | {p.ref.dimension for p in predicates(request.where)}
    grants = [g for g in scope.grants if set(request.metrics) <= g.metrics and dimensions <= g.dimensions]
    if not grants:
        raise Forbidden(
            "no policy of yours allows these metrics and dimensions together; query them separately, or ask for access"
        )
    rows = union([grant.rows for grant in grants])
    if rows is not None:
        request = replace(request, where=rows if request.where is None else And((rows, request.where)))
    return replace(request, scope=None)


def _with_derived(scope: Scope, request: MetricRequest, registry: Registry) -> Scope:
    """The scope admitting the request's own time-relative metrics (``window:``/``compare:``) wherever it admits
    their base: such a metric reads only rows of its base's fact, and the scope's row filters, AND-ed onto
    ``where``, apply to every row a window or an earlier bucket reads, as to the bucket's own. Not under
    k-anonymity, for a base over users (``metrics.policy.across_buckets``)."""
    from metrics.policy import across_buckets

    for metric in request.derived:
        if scope.k_anonymity and across_buckets(registry, metric):
            raise Forbidden(
                f"{metric.base!r} over a window or an earlier bucket is not available to you: it would read buckets "
                f"that k-anonymity leaves out; ask for {metric.base!r} per bucket"
            )
    grants = tuple(
        replace(grant, metrics=grant.metrics | {m.name for m in request.derived if m.base in grant.metrics})
        for grant in scope.grants
    )
    return replace(scope, grants=grants)


def _user_counts(plan: QueryPlan, registry: Registry) -> tuple[QueryPlan, list[str]]:
    """The plan with a distinct-user count per fact that has users, and the names of those outputs; a fact read
    only through windows gets a plain aggregate for it (the users of each row's own bucket)."""
    from metrics.policy import USER

    names, outputs = [], list(plan.outputs)
    aggregates = {aggregate.fact: aggregate for aggregate in plan.aggregates}
    for fact in dict.fromkeys([*aggregates, *(window.fact for window in plan.windows)]):
        path = registry.facts[fact].dimensions.get(USER)
        if path is not None and path.column is not None:
            name = f"_k_users_{fact}"
            counted = (name, Measure(fact, Aggregation.COUNT_DISTINCT, path.column))
            found = aggregates.get(fact, FactAggregate(fact, ()))
            aggregates[fact] = replace(found, measures=(*found.measures, counted))
            outputs.append(MetricOutput(name, DataType.INTEGER, Leaf(name, fact, True)))
            names.append(name)
    return replace(plan, aggregates=tuple(aggregates.values()), outputs=tuple(outputs)), names


def anonymise(plan: QueryPlan, registry: Registry, k: int) -> QueryPlan:
    """Only rows that aggregate at least ``k`` distinct users of every fact with users (a fact absent from a
    drill-across row counts 0 users there, so that row is left out too)."""
    plan, names = _user_counts(plan, registry)
    return replace(plan, having=(*plan.having, *(MetricCondition(name, FilterOp.GTE, k) for name in names)))


def suppressed_rows(request: MetricRequest, registry: Registry) -> sa.Select[Any] | None:
    """How many rows k-anonymity leaves out of a research request's answer (None when nothing can be)."""
    scope = request.scope
    if scope is None or not scope.k_anonymity:
        return None
    registry = registry.extended(request.derived) if request.derived else registry
    restricted = apply_scope(request, registry, scope)
    plan, names = _user_counts(plan_query(resolve(restricted, registry), registry), registry)
    if not names:
        return None
    statement = plan_to_sql(replace(plan, limit=None, offset=0, order_by=()), registry).statement
    rows = statement.order_by(None).subquery()
    below = [sa.func.coalesce(rows.c[label(name)], 0) < scope.k_anonymity for name in names]
    return sa.select(sa.func.count()).select_from(rows).where(sa.or_(*below))
