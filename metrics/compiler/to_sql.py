"""Logical plan -> one SQLAlchemy Core ``Select``.

Each fact is aggregated in its own CTE, grouped by the requested attributes;
with several facts, their CTEs are joined on those attributes through the set
of rows any of them produced (a full outer join), and metric expressions are
computed over the joined row. Dimension tables join only when an attribute of
theirs is selected or filtered; a bridge joins only when its dimension is
selected (a filter alone becomes a semi-join), so rows never fan out.

Bridged dimensions (``practice``), one rule:
- sliced by it, a fact row counts once under each member it has, and once
  under the null member where it has none; filters on it apply to each of
  those rows, as filters on any dimension do;
- not sliced by it, a predicate on it asks whether the row has a member that
  matches (a row without members has the null member, so ``isNull: true`` is
  "has none" and ``notIn [x]`` is "has a member other than x, or none");
  ``not`` negates that question (``not {in: [x]}`` is "does not have x").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement, FromClause

from metrics.compiler.columns import fact_column, physical_columns
from metrics.compiler.functions import (
    bucket_group,
    bucket_of_group,
    bucket_start,
    byte_order,
    divide,
    exact_sum,
    hour_of_day,
    iso_day_of_week,
    local_time,
    percentile_cont,
)
from metrics.compiler.plan import Arithmetic, Expression, FactAggregate, Leaf, Negate, Number, QueryPlan
from metrics.compiler.request import And, DimensionRef, Filter, Not, Or, Predicate, naive_utc
from metrics.compiler.windows import filled, window_ctes
from metrics.model import (
    MATCHING,
    ROW_COUNT,
    SPINE,
    Aggregation,
    ColumnRef,
    Condition,
    DataType,
    Fact,
    FilterOp,
    Measure,
)
from metrics.registry import TIME, Registry


def label(name: str) -> str:
    """A SQL-safe, stable column label for an attribute key or measure name."""
    return name.replace(".", "__")


@dataclass(frozen=True)
class OutputColumn:
    """One column of the result: a dimension attribute (by key) or a metric (by name)."""

    name: str
    label: str
    type: DataType
    is_metric: bool


def sql_value(value: Any) -> Any:
    """Datetimes compare as naive UTC, like the warehouse's timestamps and the time buckets."""
    return naive_utc(value) if isinstance(value, datetime) else value


def _zone(plan: QueryPlan) -> ColumnElement[str] | None:
    """The requested time zone as a bound parameter; None for UTC, which needs no conversion."""
    return None if plan.timezone == "UTC" else sa.bindparam("timezone", plan.timezone, sa.String())


def _compare(column: ColumnElement[Any], op: FilterOp, value: Any) -> ColumnElement[bool]:
    if op is FilterOp.IS_NULL:
        return column.is_(None) if value else column.is_not(None)
    if op is FilterOp.EQ:
        return column == value
    if op is FilterOp.NEQ:
        return column.is_distinct_from(value)
    if op is FilterOp.IN:
        return column.in_(list(value))
    if op is FilterOp.NOT_IN:
        return sa.or_(column.not_in(list(value)), column.is_(None))
    if op is FilterOp.LIKE:
        return column.like(value, escape="\\")
    return {
        FilterOp.GT: column > value,
        FilterOp.GTE: column >= value,
        FilterOp.LT: column < value,
        FilterOp.LTE: column <= value,
    }[op]


class _FactQuery:
    """The FROM clause and column expressions of one fact, joining dimensions on demand."""

    def __init__(self, registry: Registry, fact: Fact, plan: QueryPlan) -> None:
        self.registry = registry
        self.fact = fact
        self.plan = plan
        self.table = sa.table(fact.table, *(sa.column(name) for name in sorted(physical_columns(fact))))
        self.source: FromClause = self.table
        self.joined: dict[str, FromClause] = {}
        self.zone = _zone(plan)
        self.event_time = self.table.c[fact.time]
        self.local_time = self.event_time if self.zone is None else local_time(self.event_time, self.zone)

    def _join(self, dimension_name: str) -> FromClause:
        """Join a dimension once, as an outer join (unknown members and rows without bridge members get
        the null member): as of the event time for type 2; a bridge once per member."""
        if dimension_name in self.joined:
            return self.joined[dimension_name]
        dimension = self.registry.dimensions[dimension_name]
        path = self.fact.dimensions[dimension_name]
        if path.bridge is not None:
            bridge = sa.table(path.bridge.table, sa.column(path.bridge.key), sa.column(path.bridge.column)).alias(
                dimension_name
            )
            condition = bridge.c[path.bridge.key] == self.table.c[path.bridge.key]
            target: FromClause = bridge
        else:
            assert dimension.table is not None and dimension.key is not None and path.column is not None
            names = {dimension.key, *(a.column for a in dimension.attributes)}
            if dimension.history is not None:
                names |= {dimension.history.valid_from, dimension.history.valid_to}
            target = sa.table(dimension.table, *(sa.column(n) for n in sorted(names))).alias(dimension_name)
            condition = target.c[dimension.key] == self.table.c[path.column]
            if dimension.history is not None:
                condition = sa.and_(
                    condition,
                    self.event_time >= target.c[dimension.history.valid_from],
                    self.event_time < target.c[dimension.history.valid_to],
                )
        self.source = self.source.join(target, condition, isouter=True)
        self.joined[dimension_name] = target
        return target

    def attribute(self, ref: DimensionRef, *, grouping: bool = False) -> ColumnElement[Any]:
        """The attribute's value per row; for grouping, a time bucket's group key (see ``bucket_group``)."""
        if ref.dimension == TIME:
            if ref.grain is not None:
                return (bucket_group if grouping else bucket_start)(ref.grain, self.event_time, self.zone)
            if ref.attribute == "day_of_week":
                return iso_day_of_week(self.local_time)
            if ref.attribute == "hour_of_day":
                return hour_of_day(self.local_time)
            return iso_day_of_week(self.local_time) >= 6
        dimension = self.registry.dimensions[ref.dimension]
        path = self.fact.dimensions[ref.dimension]
        if path.bridge is not None:
            return self._join(ref.dimension).c[path.bridge.column]
        if not dimension.is_table:
            assert path.column is not None
            return self.column(path.column)
        attribute = dimension.attribute(ref.attribute or "")
        assert attribute is not None
        return self._join(ref.dimension).c[attribute.column]

    def _bridged_filter(self, predicate: Predicate) -> ColumnElement[bool]:
        """``the fact row has a member matching the predicate`` (the null member where it has none),
        as a semi-join, so the row still counts once."""
        bridge = self.fact.dimensions[predicate.ref.dimension].bridge
        assert bridge is not None
        fact = sa.table(self.fact.table, sa.column(bridge.key)).alias(MATCHING)
        members = sa.table(bridge.table, sa.column(bridge.key), sa.column(bridge.column)).alias(predicate.ref.dimension)
        condition = _compare(members.c[bridge.column], predicate.op, sql_value(predicate.value))
        matching = sa.select(fact.c[bridge.key]).select_from(
            fact.outerjoin(members, members.c[bridge.key] == fact.c[bridge.key])
        )
        return self.table.c[bridge.key].in_(matching.where(condition))

    def condition(self, where: Filter, selected: set[str]) -> ColumnElement[bool]:
        if isinstance(where, And):
            return sa.and_(sa.true(), *(self.condition(item, selected) for item in where.items))
        if isinstance(where, Or):
            return sa.or_(*(self.condition(item, selected) for item in where.items))
        if isinstance(where, Not):  # two-valued: a predicate on a null is false, so its negation is true
            return sa.not_(sa.func.coalesce(self.condition(where.item, selected), sa.false()))
        path = self.fact.dimensions.get(where.ref.dimension)
        if path is not None and path.bridge is not None and where.ref.dimension not in selected:
            return self._bridged_filter(where)
        return _compare(self.attribute(where.ref), where.op, sql_value(where.value))

    def column(self, name: str) -> ColumnElement[Any]:
        """A fact column, physical or computed from the physical ones."""
        return fact_column(self.fact, self.table, name)

    def measure(self, measure: Measure) -> ColumnElement[Any]:
        column = self.column(measure.column) if measure.column else None
        aggregation = measure.aggregation
        condition = sa.and_(*(self._measure_condition(c) for c in measure.filter)) if measure.filter else None
        is_float = self.fact.columns.get(measure.column or "") is DataType.FLOAT
        if aggregation is Aggregation.AVG:
            count = sa.func.count(column)
            return divide(exact_sum(column, condition), count if condition is None else count.filter(condition))
        if aggregation is Aggregation.SUM and is_float:
            return exact_sum(column, condition)
        if aggregation is Aggregation.COUNT:
            value: Any = sa.func.count(column) if column is not None else sa.func.count()
        elif aggregation is Aggregation.COUNT_DISTINCT:
            value = sa.func.count(sa.distinct(column))
        elif aggregation is Aggregation.PERCENTILE:
            assert measure.percentile is not None
            value = percentile_cont(measure.percentile, column)
        else:
            value = getattr(sa.func, aggregation.value)(column)
        if condition is not None:
            value = value.filter(condition)
        if aggregation is Aggregation.SUM:
            value = sa.cast(value, sa.BigInteger())
        return value

    def _measure_condition(self, condition: Condition) -> ColumnElement[bool]:
        value = condition.value
        if isinstance(value, ColumnRef):
            value = self.column(value.column)
        return _compare(self.column(condition.column), condition.op, sql_value(value))


def _aggregate_cte(registry: Registry, plan: QueryPlan, aggregate: FactAggregate) -> sa.CTE:
    query = _FactQuery(registry, registry.facts[aggregate.fact], plan)
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
    ctes = {aggregate.fact: _aggregate_cte(registry, plan, aggregate) for aggregate in plan.aggregates}
    ctes |= window_ctes(plan, lambda fact: _FactQuery(registry, registry.facts[fact], plan))
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
    zone = _zone(plan)
    labelled = {
        ref.key: (column if ref.grain is None else bucket_of_group(ref.grain, column, zone)).label(key)
        for ref, column, key in zip(plan.dimensions, dimension_columns, keys, strict=True)
    }
    labelled |= {name: expression.label(label(name)) for name, expression in metrics.items()}
    unpaged = sa.select(*labelled.values()).select_from(rows)
    if plan.having:
        unpaged = unpaged.where(*(_compare(metrics[c.metric], c.op, sql_value(c.value)) for c in plan.having))
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
