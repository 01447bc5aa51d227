"""Rendering a fact aggregate the plan routed to a rollup (``routing``): read the rollup's rows, join the
dimensions their member keys and versions name, and re-aggregate the stored parts exactly as the base query
aggregates rows (``rollup_parts``). Ragged ends of the time range are read from the fact table as the same parts
and combined with the rollup's rows before re-aggregating.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement, FromClause

from metrics.compiler.fact_query import FactQuery, label
from metrics.compiler.functions import local_time
from metrics.compiler.plan import FactAggregate, QueryPlan
from metrics.compiler.rollup_parts import BUCKET, PARTS, kept, part_name, reaggregate, row_parts, stored_measures
from metrics.compiler.rollup_tables import rollup_table
from metrics.model import Dimension, DimensionPath, Measure, Rollup
from metrics.registry import Registry


class RollupQuery(FactQuery):
    """A rollup's rows in the shape of a fact's: the bucket is the event time, kept columns are the fact's columns,
    and a table dimension joins on the member key and, for type 2, the version the rollup kept."""

    def __init__(self, registry: Registry, rollup: Rollup, timezone: str) -> None:
        super().__init__(registry, registry.facts[rollup.fact], timezone)
        self.table = rollup_table(rollup, registry)  # type: ignore[assignment]
        self.source = self.table
        self.event_time = self.table.c[BUCKET]
        self.local_time = self.event_time if self.zone is None else local_time(self.event_time, self.zone)
        self.kept = {dimension.dimension: dimension for dimension in kept(rollup, registry)}

    def member_condition(self, dimension: Dimension, path: DimensionPath, target: FromClause) -> ColumnElement[bool]:
        assert dimension.key is not None
        stored = self.kept[dimension.name]
        condition = target.c[dimension.key] == self.table.c[stored.column]
        if dimension.history is None or stored.valid_from is None:
            return condition
        return sa.and_(condition, target.c[dimension.history.valid_from] == self.table.c[stored.valid_from])

    def column(self, name: str) -> ColumnElement[Any]:
        return self.table.c[name]


def _range(event_time: ColumnElement[Any], start: Any, end: Any, name: str) -> list[ColumnElement[bool]]:
    bounds = []
    if start is not None:
        bounds.append(event_time >= sa.bindparam(f"{name}_from", start, sa.DateTime()))
    if end is not None:
        bounds.append(event_time < sa.bindparam(f"{name}_to", end, sa.DateTime()))
    return bounds


def rollup_cte(registry: Registry, plan: QueryPlan, aggregate: FactAggregate) -> sa.CTE:
    scan = aggregate.scan
    assert scan.rollup is not None
    rollup = registry.rollups[scan.rollup]
    rows = RollupQuery(registry, rollup, plan.timezone)
    names = {measure: name for name, measure in stored_measures(rollup, registry).items()}
    selected = {ref.dimension for ref in plan.dimensions}
    keys = [label(ref.key) for ref in plan.dimensions]

    def grouped(query: FactQuery, parts: list[ColumnElement[Any]], bounds: list[ColumnElement[bool]]) -> Any:
        dimensions = [
            query.attribute(ref, grouping=True).label(key) for ref, key in zip(plan.dimensions, keys, strict=True)
        ]
        where = [*bounds, *([] if plan.where is None else [query.condition(plan.where, selected)])]
        return sa.select(*dimensions, *parts).select_from(query.source).where(*where)

    stored = {
        (name, part): rows.table.c[part_name(names[measure], part)]
        for name, measure in aggregate.measures
        for part in PARTS[measure.aggregation]
    }
    bounds = _range(rows.event_time, scan.low, scan.high, f"{aggregate.fact}_rollup")
    if not scan.ragged:
        statement = grouped(rows, [_final(name, m, registry, stored) for name, m in aggregate.measures], bounds)
        return _group(statement, len(keys)).cte(aggregate.fact)
    rolled = grouped(rows, [column.label(part_name(*key)) for key, column in stored.items()], bounds)
    base = FactQuery(registry, registry.facts[aggregate.fact], plan.timezone)
    parts = [
        value.label(part_name(name, part))
        for name, measure in aggregate.measures
        for part, value in row_parts(measure, registry, *base.measure_input(measure)).items()
    ]
    ends = sa.or_(
        *(
            sa.and_(sa.true(), *_range(base.event_time, start, end, f"{aggregate.fact}_ragged{index}"))
            for index, (start, end) in enumerate(scan.ragged)
        ),
        # a ragged end open below (the plan bounded the rollup, not the request) holds rows without a time too
        *(base.event_time.is_(None) for start, _ in scan.ragged[:1] if start is None),
    )
    unrolled = _group(grouped(base, parts, [ends]), len(keys))
    combined = sa.union_all(rolled, unrolled).subquery(f"{aggregate.fact}_parts")
    columns = {key: combined.c[part_name(*key)] for key in stored}
    statement = sa.select(
        *(combined.c[key] for key in keys), *(_final(name, m, registry, columns) for name, m in aggregate.measures)
    )
    return _group(statement, len(keys)).cte(aggregate.fact)


def _final(
    name: str, measure: Measure, registry: Registry, columns: dict[tuple[str, str], ColumnElement[Any]]
) -> ColumnElement[Any]:
    parts = {part: column for (measure_name, part), column in columns.items() if measure_name == name}
    return reaggregate(measure, registry, parts).label(label(name))


def _group(statement: Any, count: int) -> Any:
    return statement.group_by(*(sa.literal_column(str(i)) for i in range(1, count + 1))) if count else statement
