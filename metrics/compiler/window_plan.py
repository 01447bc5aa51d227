"""The plan node of a time-relative aggregate: one fact's measures over a window of each output time bucket.

Kept apart from ``plan`` so the window logic stays in its own modules (``planner`` builds these nodes,
``windows`` turns them into SQL).
"""

from __future__ import annotations

from dataclasses import dataclass

from metrics.compiler.request import DimensionRef
from metrics.model import Aggregation, Measure, TimeGrain, Window, WindowKind

_CALENDAR_INPUT = (WindowKind.TRAILING, WindowKind.TO_DATE, WindowKind.SHIFTED)
_LONGEST_DAYS = {TimeGrain.DAY: 1, TimeGrain.WEEK: 7, TimeGrain.MONTH: 31, TimeGrain.QUARTER: 92, TimeGrain.YEAR: 366}


@dataclass(frozen=True)
class WindowAggregate:
    """Measures of one fact, each output bucket (at ``grain``, per partition) reading the rows of its ``window``.

    ``additive`` measures (counts, integer sums) are summed from per-input-bucket partial aggregates; the
    others (distinct counts, percentiles, averages) are computed over the window's raw rows.
    """

    fact: str
    window: Window
    grain: TimeGrain
    time_key: str
    partitions: tuple[DimensionRef, ...]
    measures: tuple[tuple[str, Measure], ...]
    additive: bool
    counts: frozenset[str]
    """The measures that read 0, not null, where a window has no rows (counts, integer sums)."""

    @property
    def name(self) -> str:
        """The CTE's name; config names never hold ``__``, so it cannot clash with a fact's."""
        return f"{self.fact}__{self.window.tag}"

    @property
    def input_grain(self) -> TimeGrain:
        """The buckets a window is made of: calendar windows start on a local day, others on a bucket."""
        if self.window.kind in _CALENDAR_INPUT and self.grain not in (TimeGrain.MINUTE, TimeGrain.HOUR):
            return TimeGrain.DAY
        return self.grain

    @property
    def holds_bucket(self) -> bool:
        """Whether every bucket's window holds the whole bucket, so reads every row the bucket has: a running
        total, a grain to date, or a trailing window at least as long as the longest bucket (31 days a month)."""
        if self.window.kind in (WindowKind.BUCKET, WindowKind.ALL, WindowKind.TO_DATE):
            return True
        if self.window.kind is not WindowKind.TRAILING or self.window.unit is None:
            return False
        days = self.window.amount * (7 if self.window.unit is TimeGrain.WEEK else 1)
        return days >= _LONGEST_DAYS.get(self.grain, 0)

    @property
    def distinct_column(self) -> str | None:
        """The column every measure counts the distinct values of, if so: then each input bucket's distinct
        values stand for its rows (a user active on 20 of 28 days is read 20 times, not once per query)."""
        columns = {m.column for _, m in self.measures if m.aggregation is Aggregation.COUNT_DISTINCT and not m.filter}
        every = len(columns) == 1 and all(m.aggregation is Aggregation.COUNT_DISTINCT for _, m in self.measures)
        return next(iter(columns)) if every else None

    def __str__(self) -> str:
        listed = ", ".join(name for name, _ in self.measures)
        how = "partial sums" if self.additive else "distinct values" if self.distinct_column else "raw rows"
        by = ", ".join(ref.key for ref in self.partitions)
        per = f" per {by}" if by else ""
        return f"window {self.fact} over {self.window} of each {self.grain.value}{per}, from {how}: {listed}"


def leaf_name(measure: str, window: Window) -> str:
    """A windowed measure's name in the plan and its column label."""
    return f"{measure}__{window.tag}"
