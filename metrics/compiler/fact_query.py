"""One fact's rows as SQL: the FROM clause and the column expressions of a fact, joining dimensions on demand.

Shared by the plain aggregates (``to_sql``), the windows (``windows``) and the reading of a rollup
(``rollup_scan``, which joins the same dimensions by the keys and versions a rollup keeps).

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

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement, FromClause

from metrics.compiler.columns import fact_column, physical_columns
from metrics.compiler.functions import (
    bucket_group,
    bucket_start,
    divide,
    exact_sum,
    hour_of_day,
    iso_day_of_week,
    local_time,
    percentile_cont,
)
from metrics.compiler.request import And, DimensionRef, Filter, Not, Or, Predicate, naive_utc
from metrics.model import (
    MATCHING,
    Aggregation,
    ColumnRef,
    Condition,
    DataType,
    Dimension,
    DimensionPath,
    Fact,
    FilterOp,
    Measure,
)
from metrics.registry import TIME, Registry


def label(name: str) -> str:
    """A SQL-safe, stable column label for an attribute key or measure name."""
    return name.replace(".", "__")


def sql_value(value: Any) -> Any:
    """Datetimes compare as naive UTC, like the warehouse's timestamps and the time buckets."""
    return naive_utc(value) if isinstance(value, datetime) else value


def zone_of(timezone: str) -> ColumnElement[str] | None:
    """The requested time zone as a bound parameter; None for UTC, which needs no conversion."""
    return None if timezone == "UTC" else sa.bindparam("timezone", timezone, sa.String())


def compare(column: ColumnElement[Any], op: FilterOp, value: Any) -> ColumnElement[bool]:
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


class FactQuery:
    """The FROM clause and column expressions of one fact, joining dimensions on demand."""

    def __init__(self, registry: Registry, fact: Fact, timezone: str = "UTC") -> None:
        self.registry = registry
        self.fact = fact
        self.table = sa.table(fact.table, *(sa.column(name) for name in sorted(physical_columns(fact))))
        self.source: FromClause = self.table
        self.joined: dict[str, FromClause] = {}
        self.zone = zone_of(timezone)
        self.event_time = self.table.c[fact.time]
        self.local_time = self.event_time if self.zone is None else local_time(self.event_time, self.zone)

    def join(self, dimension_name: str) -> FromClause:
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
            condition = self.member_condition(dimension, path, target)
        self.source = self.source.join(target, condition, isouter=True)
        self.joined[dimension_name] = target
        return target

    def member_condition(self, dimension: Dimension, path: DimensionPath, target: FromClause) -> ColumnElement[bool]:
        """The member of a row: by key, and for type 2 the version valid at the event time."""
        assert dimension.key is not None and path.column is not None
        condition = target.c[dimension.key] == self.table.c[path.column]
        if dimension.history is None:
            return condition
        return sa.and_(
            condition,
            self.event_time >= target.c[dimension.history.valid_from],
            self.event_time < target.c[dimension.history.valid_to],
        )

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
            return self.join(ref.dimension).c[path.bridge.column]
        if not dimension.is_table:
            assert path.column is not None
            return self.column(path.column)
        attribute = dimension.attribute(ref.attribute or "")
        assert attribute is not None
        return self.join(ref.dimension).c[attribute.column]

    def _bridged_filter(self, predicate: Predicate) -> ColumnElement[bool]:
        """``the fact row has a member matching the predicate`` (the null member where it has none),
        as a semi-join, so the row still counts once."""
        bridge = self.fact.dimensions[predicate.ref.dimension].bridge
        assert bridge is not None
        fact = sa.table(self.fact.table, sa.column(bridge.key)).alias(MATCHING)
        members = sa.table(bridge.table, sa.column(bridge.key), sa.column(bridge.column)).alias(predicate.ref.dimension)
        condition = compare(members.c[bridge.column], predicate.op, sql_value(predicate.value))
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
        return compare(self.attribute(where.ref), where.op, sql_value(where.value))

    def column(self, name: str) -> ColumnElement[Any]:
        """A fact column, physical or computed from the physical ones."""
        return fact_column(self.fact, self.table, name)

    def measure_input(self, measure: Measure) -> tuple[ColumnElement[Any] | None, ColumnElement[bool] | None]:
        """The value a measure aggregates (None: it counts rows) and the condition of its filter (None: every row)."""
        column = self.column(measure.column) if measure.column else None
        condition = sa.and_(*(self._measure_condition(c) for c in measure.filter)) if measure.filter else None
        return column, condition

    def measure(self, measure: Measure) -> ColumnElement[Any]:
        column, condition = self.measure_input(measure)
        aggregation = measure.aggregation
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
        return compare(self.column(condition.column), condition.op, sql_value(value))
