"""Bucket arithmetic of windows in the request's zone, and what a window reads a fact's rows through.

Window bounds are computed on wall-clock readings in the zone (calendar arithmetic on naive times), then mapped
to their first instant, as bucket starts are.
"""

from __future__ import annotations

from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement, FromClause

from metrics.compiler.functions import bucket_of_group, calendar_interval, local_time, truncate
from metrics.compiler.request import DimensionRef, Filter
from metrics.compiler.window_plan import WindowAggregate
from metrics.model import Measure, TimeGrain, WindowKind

_CLOCK = (TimeGrain.MINUTE, TimeGrain.HOUR)


class FactRows(Protocol):
    """What ``fact_query.FactQuery`` offers: one fact's rows with dimensions joined on demand."""

    source: FromClause
    event_time: ColumnElement[Any]

    def attribute(self, ref: DimensionRef, *, grouping: bool = False) -> ColumnElement[Any]: ...
    def condition(self, where: Filter, selected: set[str]) -> ColumnElement[bool]: ...
    def measure(self, measure: Measure) -> ColumnElement[Any]: ...
    def column(self, name: str) -> ColumnElement[Any]: ...


class Calendar:
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
        """The instants [lo, hi) the bucket's window reads; lo None for a running total.

        Both grow with the bucket, so the first bucket's lo and the last one's hi bound what all windows read.
        """
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


def scalar(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A value computed once per statement, not once per row it is compared with."""
    return sa.select(value).scalar_subquery()
