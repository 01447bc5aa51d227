"""Window aggregates -> CTEs: each output time bucket's value over the rows of its window, every bucket present.

For a ``WindowAggregate`` at grain G in zone Z, four CTEs beside the fact's shared inputs (``window_inputs``):

- ``<name>__buckets``: every output bucket of the requested range (or of the fact's rows, without a range),
  as the same group key a plain aggregate has (``bucket_group``), with the instants [lo, hi) its window reads;
- ``<name>__pairs``: (output bucket, input bucket) for every input bucket inside the window; input buckets
  are local days for calendar windows (so ``7 days`` is 7 calendar days of 23, 24 or 25 hours), else G;
- ``<name>__values``: the measures per output bucket and partition: additive ones summed from the shared
  per-input-bucket partial aggregates; distinct counts as running sums over runs of output buckets
  (``window_distinct``); the others over the raw rows, each row once per output bucket whose window holds it;
- ``<name>``: every output bucket for every partition present in the requested range, counts 0 where
  nothing was read.

The requested range picks output buckets, never input rows. Other filters apply to the input rows, and
partitions (members as of each row's event time) to both.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement, FromClause

from metrics.compiler.fact_query import label, zone_of
from metrics.compiler.functions import bucket_group, bucket_series
from metrics.compiler.plan import QueryPlan
from metrics.compiler.window_calendar import Calendar, FactRows, scalar
from metrics.compiler.window_distinct import distinct_counts
from metrics.compiler.window_inputs import WindowInputs, base_name
from metrics.compiler.window_plan import WindowAggregate
from metrics.model import TimeGrain

_ONE_MICROSECOND = sa.literal_column("INTERVAL '1 microsecond'", sa.Interval())


def _additive_sum(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return sa.cast(sa.func.sum(value), sa.BigInteger())


class _WindowSql:
    def __init__(self, plan: QueryPlan, aggregate: WindowAggregate, inputs: WindowInputs) -> None:
        self.plan, self.aggregate, self.inputs = plan, aggregate, inputs
        self.zone = inputs.zone
        self.output = Calendar(aggregate.grain, self.zone)
        self.input = Calendar(aggregate.input_grain, self.zone)
        self.keys = inputs.keys

    def _param(self, name: str, value: Any) -> ColumnElement[Any]:
        return sa.cast(sa.bindparam(f"{self.aggregate.name}_{name}", value, sa.DateTime()), sa.DateTime())

    def buckets(self) -> sa.CTE:
        plan, grain = self.plan, self.aggregate.grain
        first = self._param("from", plan.start) if plan.start is not None else self.inputs.extreme("first")
        last = (
            self._param("last", plan.end - timedelta(microseconds=1))
            if plan.end is not None
            else self.inputs.extreme("last")
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
        """With the output buckets' ``number`` in order, where distinct values need it."""
        grain = self.aggregate.input_grain
        first = scalar(sa.func.min(buckets.c.lo)) if "lo" in buckets.c else self.inputs.extreme("first")
        last = scalar(sa.func.max(buckets.c.hi)) - _ONE_MICROSECOND
        series = sa.select(
            bucket_series(
                bucket_group(grain, first, self.zone), bucket_group(grain, last, self.zone), self.input.step
            ).label("bucket")
        ).subquery(f"{self.aggregate.name}__inputs")
        start = self.input.start(series.c.bucket)
        inside = [start < buckets.c.hi] + ([start >= buckets.c.lo] if "lo" in buckets.c else [])
        columns = [buckets.c.bucket.label("bucket"), series.c.bucket.label("input")]
        if self.aggregate.distinct_column is not None:
            columns.append(sa.func.dense_rank().over(order_by=buckets.c.bucket).label("number"))
        statement = sa.select(*columns).select_from(buckets.join(series, sa.and_(*inside)))
        return statement.cte(f"{self.aggregate.name}__pairs")

    def values(self, pairs: sa.CTE) -> sa.CTE:
        """The measures per output bucket and partition, from the input buckets paired with it."""
        group = [sa.literal_column(str(i)) for i in range(1, len(self.keys) + 2)]
        measures = self.aggregate.measures
        if self.aggregate.additive:
            shared = self.inputs.cte
            values = [_additive_sum(shared.c[label(base_name(self.aggregate, n))]).label(label(n)) for n, _ in measures]
            source: FromClause = shared.join(pairs, pairs.c.input == shared.c.input)
            statement = sa.select(pairs.c.bucket, *(shared.c[key] for key in self.keys), *values).select_from(source)
            return statement.group_by(*group).cte(f"{self.aggregate.name}__values")
        query = self.inputs.rows()
        parts = self.inputs.partitions(query)
        conditions = self.inputs.conditions(query)
        input_bucket = bucket_group(self.aggregate.input_grain, query.event_time, self.zone).label("input")
        if self.aggregate.distinct_column is None:
            values = [query.measure(measure).label(label(name)) for name, measure in measures]
            source = query.source.join(pairs, pairs.c.input == input_bucket)
            statement = sa.select(pairs.c.bucket, *parts, *values).select_from(source).where(*conditions)
            return statement.group_by(*group).cte(f"{self.aggregate.name}__values")
        value = query.column(self.aggregate.distinct_column)
        found = sa.select(input_bucket, *parts, value.label("value")).select_from(query.source)
        found = found.where(*conditions, value.is_not(None)).distinct().subquery(f"{self.aggregate.name}__distinct")
        return distinct_counts(self.aggregate, found, self.keys, pairs)

    def present(
        self, buckets: sa.CTE, pairs: sa.CTE, values: sa.CTE
    ) -> tuple[FromClause, dict[str, ColumnElement[Any]]]:
        """Every output bucket for every combination of the partitions with rows in a window of one of its
        buckets (a tier quiet in the range may still have a 7-day count on its first day), and, where a window
        may not hold all of its own bucket (an offset, or 7 days of a month: ``holds_bucket``), in the range."""
        if not self.keys:
            return buckets, {}
        if self.inputs.reads_partitions(self.aggregate):
            shared = self.inputs.cte
            read = shared.c.input.in_(sa.select(pairs.c.input))
            held = read if self.aggregate.holds_bucket else sa.or_(read, self.inputs.in_range())
            combinations = sa.select(*(shared.c[key] for key in self.keys)).where(held).distinct()
        else:  # a partition with rows in a window has a value there
            combinations = sa.select(*(values.c[key] for key in self.keys)).distinct()
        found = combinations.subquery(f"{self.aggregate.name}__partitions")
        return buckets.join(found, sa.true()), {key: found.c[key] for key in self.keys}

    def cte(self) -> sa.CTE:
        buckets = self.buckets()
        pairs = self.pairs(buckets)
        values = self.values(pairs)
        grid, grid_key = self.present(buckets, pairs, values)
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
    """The CTE of each window aggregate by name (the ``fact`` of its leaves); ``rows(fact)`` gives fresh rows.

    The windows of one fact at one input grain share one scan of its rows (``WindowInputs``).
    """
    zone = zone_of(plan.timezone)
    sharing: dict[tuple[str, TimeGrain], list[WindowAggregate]] = {}
    for aggregate in plan.windows:
        sharing.setdefault((aggregate.fact, aggregate.input_grain), []).append(aggregate)
    inputs = {
        key: WindowInputs(plan, key[1], aggregates, lambda fact=key[0]: rows(fact), zone)
        for key, aggregates in sharing.items()
    }
    return {
        aggregate.name: _WindowSql(plan, aggregate, inputs[(aggregate.fact, aggregate.input_grain)]).cte()
        for aggregate in plan.windows
    }
