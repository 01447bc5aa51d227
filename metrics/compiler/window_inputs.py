"""The rows the windows of one fact read, scanned once per input grain (``<fact>__<grain>_inputs``).

Per input bucket and partition, one CTE holds what every window of the fact at that input grain needs from
the fact's filtered rows: the partial aggregates of the additive measures (a previous-period value, a bucket's
own value and a 7-day sum all add up the same partials), and whether the group has rows in the requested
range (the partitions present); its first and last input bucket are the range where none was requested.
Windows whose measures are not additive read the raw rows themselves, within the same bounds.

The rows are bounded by constants that hold what all windows read and the requested range, with room to
spare (``WindowAggregate.earliest_read``); pairs of output and input buckets then pick them exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement

from metrics.compiler.fact_query import label
from metrics.compiler.functions import bucket_group
from metrics.compiler.plan import QueryPlan
from metrics.compiler.window_calendar import Calendar, FactRows
from metrics.compiler.window_plan import WindowAggregate
from metrics.model import Measure, TimeGrain, WindowKind


def base_name(aggregate: WindowAggregate, leaf: str) -> str:
    """The measure's name without its window (``error_count`` of ``error_count__previous``)."""
    return leaf.removesuffix(f"__{aggregate.window.tag}")


class WindowInputs:
    def __init__(
        self,
        plan: QueryPlan,
        grain: TimeGrain,
        aggregates: list[WindowAggregate],
        rows: Callable[[], FactRows],
        zone: ColumnElement[str] | None,
    ) -> None:
        self.plan, self.grain, self.aggregates, self.rows, self.zone = plan, grain, aggregates, rows, zone
        self.name = f"{aggregates[0].fact}__{grain.value}_inputs"
        self.keys = [label(ref.key) for ref in aggregates[0].partitions]
        self.selected = {ref.dimension for ref in plan.dimensions}
        self.partials: dict[str, Measure] = {
            base_name(aggregate, leaf): measure
            for aggregate in aggregates
            if aggregate.additive
            for leaf, measure in aggregate.measures
        }
        self.ranged = plan.start is not None or plan.end is not None
        self.needs_span = (
            plan.start is None or plan.end is None or any(a.window.kind is WindowKind.ALL for a in aggregates)
        )
        self.needs_in_range = self.ranged and not all(a.holds_bucket for a in aggregates)
        self.cte = self._cte()
        self.span = self._span() if self.needs_span else None

    def param(self, name: str, value: Any) -> ColumnElement[Any]:
        return sa.cast(sa.bindparam(f"{self.name}_{name}", value, sa.DateTime()), sa.DateTime())

    def start(self) -> ColumnElement[Any] | None:
        return None if self.plan.start is None else self.param("from", self.plan.start)

    def end(self) -> ColumnElement[Any] | None:
        return None if self.plan.end is None else self.param("to", self.plan.end)

    def conditions(self, query: FactRows) -> list[ColumnElement[bool]]:
        """The filters, then a range of event times that holds every one a window reads or the requested range
        holds (``earliest_read``, ``latest_read``): constants the backend prunes its scan with.

        An open side of the requested range is no condition (the buckets then reach the first or last row),
        which also keeps the backend's row estimates (and its choice of hash aggregation) intact.
        """
        plan, bounds = self.plan, []
        if plan.start is not None:
            earliest = [aggregate.earliest_read(plan.start) for aggregate in self.aggregates]
            if None not in earliest:
                bounds.append(query.event_time >= self.param("earliest", min(filter(None, earliest))))
        if plan.end is not None:
            latest = [aggregate.latest_read(plan.end) for aggregate in self.aggregates]
            if None not in latest:
                bounds.append(query.event_time < self.param("latest", max(filter(None, latest))))
        where = [] if plan.where is None else [query.condition(plan.where, self.selected)]
        return [*where, *bounds]  # the filters first: they join the dimensions they need before the source is taken

    def partitions(self, query: FactRows) -> list[ColumnElement[Any]]:
        return [
            query.attribute(ref, grouping=True).label(key)
            for ref, key in zip(self.aggregates[0].partitions, self.keys, strict=True)
        ]

    def _cte(self) -> sa.CTE:
        query = self.rows()
        parts = self.partitions(query)
        conditions = self.conditions(query)
        columns = [bucket_group(self.grain, query.event_time, self.zone).label("input"), *parts]
        if self.needs_in_range:
            held = [query.event_time >= self.start()] if self.plan.start is not None else []
            held += [query.event_time < self.end()] if self.plan.end is not None else []
            columns.append(sa.func.max(sa.case((sa.and_(*held), 1), else_=0)).label("in_range"))
        columns += [query.measure(measure).label(label(name)) for name, measure in self.partials.items()]
        group = [sa.literal_column(str(i)) for i in range(1, len(parts) + 2)]
        statement = sa.select(*columns).select_from(query.source).where(*conditions).group_by(*group)
        return statement.cte(self.name)

    def reads_partitions(self, aggregate: WindowAggregate) -> bool:
        """Whether a window takes its partitions from here: where its values may lack one present in the range
        (a window that may not hold its bucket), or a partition whose values are all null (a distinct count)."""
        return bool(self.keys) and (not aggregate.holds_bucket or aggregate.distinct_column is not None)

    def _span(self) -> sa.CTE:
        """The first and last input bucket with rows (output buckets are made of whole input buckets), from the
        shared scan where several parts of the query read it (then it is computed once anyway); else the first
        and last event time, from a scan of their own (an index's ends, or a scan cheaper than grouping every
        row), so that the one part reading the shared scan may have it inline (PostgreSQL runs a CTE read
        twice without parallel workers)."""
        readers = sum(a.additive for a in self.aggregates) + sum(self.reads_partitions(a) for a in self.aggregates)
        if readers <= 1:
            query = self.rows()
            conditions = self.conditions(query)
            extremes = [sa.func.min(query.event_time).label("first"), sa.func.max(query.event_time).label("last")]
            return sa.select(*extremes).select_from(query.source).where(*conditions).cte(f"{self.name}__span")
        calendar = Calendar(self.grain, self.zone)
        first, last = sa.func.min(self.cte.c.input), sa.func.max(self.cte.c.input)
        statement = sa.select(calendar.start(first).label("first"), calendar.start(last).label("last"))
        return statement.cte(f"{self.name}__span")

    def extreme(self, which: str) -> ColumnElement[Any]:
        """An instant in the bucket of the ``first`` or ``last`` filtered row: the range where none was requested."""
        assert self.span is not None
        return sa.select(self.span.c[which]).scalar_subquery()

    def in_range(self) -> ColumnElement[bool]:
        """Whether a group has rows in the requested range (every group, without one)."""
        return self.cte.c.in_range == 1 if self.needs_in_range else sa.true()
