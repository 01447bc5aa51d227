"""Logical plan -> one SQLAlchemy Core ``Select``.

Each fact is aggregated in its own CTE, grouped by the requested attributes;
with several facts, their CTEs are joined on those attributes through the set
of rows any of them produced (a full outer join), and metric expressions are
computed over the joined row. Dimension tables join only when an attribute of
theirs is selected or filtered; a bridge joins only when its dimension is
selected (a filter alone becomes a semi-join), so rows never fan out.

Each fact's rows come from ``fact_query`` (the fact table) or ``rollup_scan`` (a rollup the plan chose).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement, FromClause

from metrics.compiler.fact_query import FactQuery, compare, label, sql_value, zone_of
from metrics.compiler.functions import (
    bucket_of_group,
    byte_order,
    divide,
)
from metrics.compiler.plan import Arithmetic, Expression, FactAggregate, Leaf, Negate, Number, QueryPlan
from metrics.compiler.rollup_scan import rollup_cte
from metrics.compiler.windows import filled, window_ctes
from metrics.model import (
    ROW_COUNT,
    SPINE,
    DataType,
)
from metrics.registry import Registry


@dataclass(frozen=True)
class OutputColumn:
    """One column of the result: a dimension attribute (by key) or a metric (by name)."""

    name: str
    label: str
    type: DataType
    is_metric: bool


def _aggregate_cte(registry: Registry, plan: QueryPlan, aggregate: FactAggregate) -> sa.CTE:
    query = FactQuery(registry, registry.facts[aggregate.fact], plan.timezone)
    selected = {ref.dimension for ref in plan.dimensions}
    dimensions = [query.attribute(ref, grouping=True).label(label(ref.key)) for ref in plan.dimensions]
    measures = [query.measure(measure).label(label(name)) for name, measure in aggregate.measures]
    conditions = []
    event_time = query.event_time
    if plan.start is not None:
        conditions.append(event_time >= sa.bindparam(f"{aggregate.fact}_from", plan.start, sa.DateTime()))
    if plan.end is not None:
        conditions.append(event_time < sa.bindparam(f"{aggregate.fact}_to", plan.end, sa.DateTime()))
    if plan.where is not None:
        conditions.append(query.condition(plan.where, selected))
    statement = sa.select(*dimensions, *measures).select_from(query.source).where(*conditions)
    if dimensions:
        statement = statement.group_by(*(sa.literal_column(str(i)) for i in range(1, len(dimensions) + 1)))
    return statement.cte(aggregate.fact)


def _expression(expression: Expression, leaves: dict[str, ColumnElement[Any]]) -> ColumnElement[Any]:
    if isinstance(expression, Leaf):
        return leaves[expression.measure]
    if isinstance(expression, Number):
        return sa.literal(expression.value, sa.Double())
    if isinstance(expression, Negate):
        return -_expression(expression.operand, leaves)
    left, right = _expression(expression.left, leaves), _expression(expression.right, leaves)
    if expression.op == "/":
        return divide(left, right)
    return {"+": left + right, "-": left - right, "*": left * right}[expression.op]


def _leaves(plan: QueryPlan) -> Iterator[Leaf]:
    def walk(expression: Expression) -> Iterator[Leaf]:
        if isinstance(expression, Leaf):
            yield expression
        elif isinstance(expression, Arithmetic):
            yield from walk(expression.left)
            yield from walk(expression.right)
        elif isinstance(expression, Negate):
            yield from walk(expression.operand)

    for output in plan.outputs:
        yield from walk(output.expression)


@dataclass(frozen=True)
class SqlQuery:
    """The statement of a plan, and the statement that counts its rows before limit and offset.

    ``statement`` computes ``count(*) OVER ()`` only when the plan asks for the total: the window makes the
    database produce every row before it can return the first. A page past the last row has no row to
    carry that window's value, so ``count`` answers the total whatever the page.
    """

    statement: sa.Select[Any]
    count: sa.Select[Any]
    columns: tuple[OutputColumn, ...]


def plan_to_sql(plan: QueryPlan, registry: Registry) -> SqlQuery:
    ctes = {
        aggregate.fact: (_aggregate_cte if aggregate.scan.rollup is None else rollup_cte)(registry, plan, aggregate)
        for aggregate in plan.aggregates
    }
    ctes |= window_ctes(plan, lambda fact: FactQuery(registry, registry.facts[fact], plan.timezone))
    keys = [label(ref.key) for ref in plan.dimensions]
    drill_across = len(ctes) > 1
    if not drill_across:
        [source] = ctes.values()
        rows: FromClause = source
        dimension_columns = [source.c[key] for key in keys]
    elif keys:
        spine = sa.union(*(sa.select(*(cte.c[key] for key in keys)) for cte in ctes.values())).cte(SPINE)
        rows = spine
        for cte in ctes.values():
            rows = rows.outerjoin(cte, sa.and_(*(spine.c[key].is_not_distinct_from(cte.c[key]) for key in keys)))
        dimension_columns = [spine.c[key] for key in keys]
    else:
        first, *others = ctes.values()
        rows = first
        for cte in others:
            rows = rows.join(cte, sa.true())
        dimension_columns = []
    leaves: dict[str, ColumnElement[Any]] = {}
    for leaf in _leaves(plan):
        column = ctes[leaf.fact].c[label(leaf.measure)]
        leaves[leaf.measure] = sa.func.coalesce(column, 0) if drill_across and leaf.is_count else column
    metrics = {output.name: filled(output.fill, _expression(output.expression, leaves)) for output in plan.outputs}
    zone = zone_of(plan.timezone)
    labelled = {
        ref.key: (column if ref.grain is None else bucket_of_group(ref.grain, column, zone)).label(key)
        for ref, column, key in zip(plan.dimensions, dimension_columns, keys, strict=True)
    }
    labelled |= {name: expression.label(label(name)) for name, expression in metrics.items()}
    unpaged = sa.select(*labelled.values()).select_from(rows)
    if plan.having:
        unpaged = unpaged.where(*(compare(metrics[c.metric], c.op, sql_value(c.value)) for c in plan.having))
    count = sa.select(sa.func.count().label(ROW_COUNT)).select_from(unpaged.subquery(ROW_COUNT))
    statement = unpaged.add_columns(sa.func.count().over().label(ROW_COUNT)) if plan.total_count else unpaged
    sortable = {
        ref.key: byte_order(column) if t is DataType.STRING else column
        for ref, column, t in zip(plan.dimensions, dimension_columns, plan.dimension_types, strict=True)
    }
    sortable |= metrics

    def sort_key(name: str, descending: bool) -> Any:
        expression = labelled[name] if name in metrics else sortable[name]
        return (expression.desc() if descending else expression.asc()).nulls_last()

    ordered = {order.field for order in plan.order_by}
    ordering = [sort_key(o.field, o.descending) for o in plan.order_by]
    ordering += [sort_key(ref.key, False) for ref in plan.dimensions if ref.key not in ordered]
    statement = statement.order_by(*ordering)
    if plan.limit is not None:
        statement = statement.limit(plan.limit)
    if plan.offset:
        statement = statement.offset(plan.offset)
    columns = tuple(
        OutputColumn(ref.key, label(ref.key), t, False)
        for ref, t in zip(plan.dimensions, plan.dimension_types, strict=True)
    )
    columns += tuple(OutputColumn(o.name, label(o.name), o.type, True) for o in plan.outputs)
    return SqlQuery(statement, count, columns)
