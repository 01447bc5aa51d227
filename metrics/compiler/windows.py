"""Window aggregates -> CTEs: each output time bucket's value over the rows of its window, every bucket present.

For a ``WindowAggregate`` at grain G in zone Z, four CTEs:

- ``<name>__buckets``: every output bucket of the requested range (or of the fact's rows, without a range),
  as the same group key a plain aggregate has (``bucket_group``), with the instants [lo, hi) its window reads;
- ``<name>__pairs``: (output bucket, input bucket) for every input bucket inside the window; input buckets
  are local days for calendar windows (so ``7 days`` is 7 calendar days of 23, 24 or 25 hours), else G;
- ``<name>__values``: the measures per output bucket and partition: additive ones summed from per-input-bucket
  partial aggregates, the others over the raw rows, each row once per output bucket whose window holds it;
- ``<name>``: every output bucket for every partition present in the requested range, counts 0 where
  nothing was read.

Window bounds are computed on wall-clock readings in Z (calendar arithmetic on naive times), then mapped to
their first instant, as bucket starts are; the requested range picks output buckets, never input rows.
Other filters apply to the input rows, and partitions (members as of each row's event time) to both.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement, FromClause

from metrics.compiler.fact_query import label, zone_of
from metrics.compiler.functions import (
    bucket_group,
    bucket_of_group,
    bucket_series,
    calendar_interval,
    local_time,
    truncate,
)
from metrics.compiler.plan import QueryPlan
from metrics.compiler.request import DimensionRef, Filter
from metrics.compiler.window_plan import WindowAggregate
from metrics.model import Measure, TimeGrain, WindowKind

_CLOCK = (TimeGrain.MINUTE, TimeGrain.HOUR)
_ONE_MICROSECOND = sa.literal_column("INTERVAL '1 microsecond'", sa.Interval())


class FactRows(Protocol):
    """What ``fact_query.FactQuery`` offers: one fact's rows with dimensions joined on demand."""

    source: FromClause
    event_time: ColumnElement[Any]

    def attribute(self, ref: DimensionRef, *, grouping: bool = False) -> ColumnElement[Any]: ...
    def condition(self, where: Filter, selected: set[str]) -> ColumnElement[bool]: ...
    def measure(self, measure: Measure) -> ColumnElement[Any]: ...
    def column(self, name: str) -> ColumnElement[Any]: ...


class _Calendar:
    """Bucket arithmetic in the request's zone: wall-clock readings <-> first instants (naive UTC)."""

    def __init__(self, grain: TimeGrain, zone: ColumnElement[str] | None) -> None:
        self.grain, self.zone = grain, zone
        self.clock = grain in _CLOCK
        self.step = calendar_interval(1, grain)

    def instant(self, wall: ColumnElement[Any]) -> ColumnElement[Any]:
        return wall if self.zone is None else bucket_of_group(TimeGrain.DAY, wall, self.zone)

    def wall(self, instant: ColumnElement[Any]) -> ColumnElement[Any]:
        return instant if self.zone is None else local_time(instant, self.zone)

    def start(self, group: ColumnElement[Any]) -> ColumnElement[Any]:
        """A bucket's first instant from its group key (an instant for clock grains, else a local reading)."""
        return group if self.clock else self.instant(group)

    def end(self, group: ColumnElement[Any]) -> ColumnElement[Any]:
        return group + self.step if self.clock else self.instant(group + self.step)

    def start_wall(self, group: ColumnElement[Any]) -> ColumnElement[Any]:
        return self.wall(group) if self.clock else group

    def bounds(self, aggregate: WindowAggregate, group: ColumnElement[Any]) -> tuple[Any, ColumnElement[Any]]:
        """The instants [lo, hi) the bucket's window reads; lo None for a running total."""
        window, start, end = aggregate.window, self.start(group), self.end(group)
        if window.kind is WindowKind.BUCKET:
            return start, end
        if window.kind is WindowKind.ALL:
            return None, end
        if window.kind is WindowKind.PREVIOUS:
            return (start - self.step if self.clock else self.instant(group - self.step)), start
        assert window.unit is not None
        if window.kind is WindowKind.TO_DATE:
            return self.instant(truncate(window.unit, self.start_wall(group))), end
        back = calendar_interval(window.amount, window.unit)
        if window.kind is WindowKind.TRAILING:
            end_wall = self.wall(end) if self.clock else group + self.step
            return self.instant(end_wall - back), end
        shifted = self.instant(self.start_wall(group) - back)  # SHIFTED: the same grain, starting earlier
        return shifted, (shifted + self.step if self.clock else self.instant(self.start_wall(group) - back + self.step))


def _additive_sum(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return sa.cast(sa.func.sum(value), sa.BigInteger())


class _WindowSql:
    def __init__(
        self, plan: QueryPlan, aggregate: WindowAggregate, rows: Callable[[], FactRows], spans: dict[str, sa.CTE]
    ) -> None:
        self.plan, self.aggregate, self.rows, self.spans = plan, aggregate, rows, spans
        self.zone = zone_of(plan.timezone)
        self.output = _Calendar(aggregate.grain, self.zone)
        self.input = _Calendar(aggregate.input_grain, self.zone)
        self.selected = {ref.dimension for ref in plan.dimensions}
        self.keys = [label(ref.key) for ref in aggregate.partitions]

    def _filtered(self, query: FactRows, *conditions: ColumnElement[bool]) -> list[ColumnElement[bool]]:
        where = [] if self.plan.where is None else [query.condition(self.plan.where, self.selected)]
        return [*conditions, *where]

    def _extreme(self, which: str) -> ColumnElement[Any]:
        """The ``first`` or ``last`` event time of the fact's filtered rows: the range where none was requested.

        Both come from one scan (``<fact>__span``), shared by every window of the fact.
        """
        fact = self.aggregate.fact
        if fact not in self.spans:
            query = self.rows()
            statement = sa.select(
                sa.func.min(query.event_time).label("first"), sa.func.max(query.event_time).label("last")
            )
            conditions = self._filtered(query)  # joins what the filter needs before the source is taken
            self.spans[fact] = statement.select_from(query.source).where(*conditions).cte(f"{fact}__span")
        return sa.select(self.spans[fact].c[which]).scalar_subquery()

    def _param(self, name: str, value: Any) -> ColumnElement[Any]:
        return sa.cast(sa.bindparam(f"{self.aggregate.name}_{name}", value, sa.DateTime()), sa.DateTime())

    def buckets(self) -> sa.CTE:
        plan, grain = self.plan, self.aggregate.grain
        first = self._param("from", plan.start) if plan.start is not None else self._extreme("first")
        last = (
            self._param("last", plan.end - timedelta(microseconds=1)) if plan.end is not None else self._extreme("last")
        )
        series = sa.select(
            bucket_series(
                bucket_group(grain, first, self.zone), bucket_group(grain, last, self.zone), self.output.step
            ).label("bucket")
        ).subquery(f"{self.aggregate.name}__series")
        lo, hi = self.output.bounds(self.aggregate, series.c.bucket)
        columns = [series.c.bucket, hi.label("hi")] + ([] if lo is None else [lo.label("lo")])
        return sa.select(*columns).cte(f"{self.aggregate.name}__buckets")

    def pairs(self, buckets: sa.CTE) -> sa.CTE:
        grain = self.aggregate.input_grain
        if "lo" in buckets.c:
            first: ColumnElement[Any] = sa.select(sa.func.min(buckets.c.lo)).scalar_subquery()
        else:
            first = self._extreme("first")
        last = sa.select(sa.func.max(buckets.c.hi)).scalar_subquery() - _ONE_MICROSECOND
        series = sa.select(
            bucket_series(
                bucket_group(grain, first, self.zone), bucket_group(grain, last, self.zone), self.input.step
            ).label("bucket")
        ).subquery(f"{self.aggregate.name}__inputs")
        start = self.input.start(series.c.bucket)
        inside = [start < buckets.c.hi] + ([start >= buckets.c.lo] if "lo" in buckets.c else [])
        statement = sa.select(buckets.c.bucket.label("bucket"), series.c.bucket.label("input"))
        return statement.select_from(buckets.join(series, sa.and_(*inside))).cte(f"{self.aggregate.name}__pairs")

    def _input_range(self, query: FactRows, buckets: sa.CTE) -> list[ColumnElement[bool]]:
        """The event times some window reads: from the first window's start (if any) to the last one's end.

        Without a requested range the buckets span every row, so their windows read them all: no condition,
        which also keeps the backend's row estimates (and its choice of hash aggregation) intact.
        """
        if self.plan.start is None and self.plan.end is None:
            return []
        hi = sa.select(sa.func.max(buckets.c.hi)).scalar_subquery()
        conditions = [query.event_time < hi]
        if "lo" in buckets.c:
            conditions.append(query.event_time >= sa.select(sa.func.min(buckets.c.lo)).scalar_subquery())
        return conditions

    def values(self, buckets: sa.CTE, pairs: sa.CTE) -> sa.CTE:
        """The measures per output bucket and partition, from the rows of the input buckets paired with it:
        summed partial aggregates, distinct values per input bucket, or else each raw row once per output
        bucket whose window holds it."""
        query = self.rows()
        parts = [
            query.attribute(ref, grouping=True).label(key)
            for ref, key in zip(self.aggregate.partitions, self.keys, strict=True)
        ]
        conditions = self._filtered(query, *self._input_range(query, buckets))  # joins what filters need, first
        inputs = sa.select(bucket_group(self.aggregate.input_grain, query.event_time, self.zone).label("input"), *parts)
        inputs = inputs.select_from(query.source).where(*conditions)
        group = [sa.literal_column(str(i)) for i in range(1, len(parts) + 2)]
        measures = self.aggregate.measures
        if self.aggregate.distinct_column is not None:
            value = query.column(self.aggregate.distinct_column).label("value")
            rows = inputs.add_columns(value).distinct().subquery(f"{self.aggregate.name}__distinct")
            values = [sa.func.count(sa.distinct(rows.c.value)).label(label(name)) for name, _ in measures]
        elif self.aggregate.additive:
            partial = [query.measure(measure).label(label(name)) for name, measure in measures]
            rows = inputs.add_columns(*partial).group_by(*group).subquery(f"{self.aggregate.name}__partial")
            values = [_additive_sum(rows.c[label(name)]).label(label(name)) for name, _ in measures]
        else:
            source = query.source.join(pairs, pairs.c.input == inputs.selected_columns.input)
            values = [query.measure(measure).label(label(name)) for name, measure in measures]
            statement = sa.select(pairs.c.bucket, *parts, *values).select_from(source)
            return statement.where(inputs.whereclause).group_by(*group).cte(f"{self.aggregate.name}__values")
        source = rows.join(pairs, pairs.c.input == rows.c.input)
        statement = sa.select(pairs.c.bucket, *(rows.c[key] for key in self.keys), *values).select_from(source)
        return statement.group_by(*group).cte(f"{self.aggregate.name}__values")

    def present(self, buckets: sa.CTE, values: sa.CTE) -> tuple[FromClause, dict[str, ColumnElement[Any]]]:
        """Every output bucket for every combination of the partitions with rows in the requested range or in
        a window of one of its buckets (a tier quiet in the range may still have a 7-day count on its first day).

        Those with rows in a window are the ones the values have; a window that may not hold all of its own
        bucket (an offset, or 7 days of a month: ``holds_bucket``) adds those with rows in the range.
        """
        if not self.keys:
            return buckets, {}
        combinations: Any = sa.select(*(values.c[key] for key in self.keys))
        if not self.aggregate.holds_bucket:
            query = self.rows()
            parts = [
                query.attribute(ref, grouping=True).label(key)
                for ref, key in zip(self.aggregate.partitions, self.keys, strict=True)
            ]
            in_range = [sa.true()]
            if self.plan.start is not None:
                in_range.append(query.event_time >= self._param("from", self.plan.start))
            if self.plan.end is not None:
                in_range.append(query.event_time < self._param("to", self.plan.end))
            conditions = self._filtered(query, *in_range)
            rows = sa.select(*parts).select_from(query.source).where(*conditions).distinct()
            combinations = sa.union(combinations, rows)
        else:
            combinations = combinations.distinct()
        found = combinations.subquery(f"{self.aggregate.name}__partitions")
        return buckets.join(found, sa.true()), {key: found.c[key] for key in self.keys}

    def cte(self) -> sa.CTE:
        buckets = self.buckets()
        values = self.values(buckets, self.pairs(buckets))
        grid, grid_key = self.present(buckets, values)
        matched = [values.c.bucket == buckets.c.bucket] + [
            values.c[key].is_not_distinct_from(grid_key[key]) for key in self.keys
        ]
        measures = [
            (
                sa.func.coalesce(values.c[label(name)], 0) if name in self.aggregate.counts else values.c[label(name)]
            ).label(label(name))
            for name, _ in self.aggregate.measures
        ]
        statement = sa.select(
            buckets.c.bucket.label(label(self.aggregate.time_key)), *(grid_key[key] for key in self.keys), *measures
        ).select_from(grid.outerjoin(values, sa.and_(*matched)))
        return statement.cte(self.aggregate.name)


def filled(value: float | None, expression: ColumnElement[Any]) -> ColumnElement[Any]:
    """A gap-filled metric's value: its ``fill`` where the expression is null."""
    return expression if value is None else sa.func.coalesce(expression, sa.literal(value, sa.Double()))


def window_ctes(plan: QueryPlan, rows: Callable[[str], FactRows]) -> dict[str, sa.CTE]:
    """The CTE of each window aggregate by name (the ``fact`` of its leaves); ``rows(fact)`` gives fresh rows."""
    spans: dict[str, sa.CTE] = {}
    return {
        aggregate.name: _WindowSql(plan, aggregate, lambda fact=aggregate.fact: rows(fact), spans).cte()
        for aggregate in plan.windows
    }
