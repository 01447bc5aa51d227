"""The plan node of a time-relative aggregate: one fact's measures over a window of each output time bucket.

Kept apart from ``plan`` so the window logic stays in its own modules (``planner`` builds these nodes,
``windows`` turns them into SQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from metrics.compiler.request import DimensionRef
from metrics.model import Aggregation, Measure, TimeGrain, Window, WindowKind

_CALENDAR_INPUT = (WindowKind.TRAILING, WindowKind.TO_DATE, WindowKind.SHIFTED)
_CLOCK = (TimeGrain.MINUTE, TimeGrain.HOUR)
_LONGEST = {
    TimeGrain.MINUTE: timedelta(minutes=1),
    TimeGrain.HOUR: timedelta(hours=1),
    TimeGrain.DAY: timedelta(days=1),
    TimeGrain.WEEK: timedelta(days=7),
    TimeGrain.MONTH: timedelta(days=31),
    TimeGrain.QUARTER: timedelta(days=92),
    TimeGrain.YEAR: timedelta(days=366),
}
_ZONE_SLACK = timedelta(days=2)
"""More than any zone's offset from UTC (at most 14 hours) and than any change of it."""
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

    def earliest_read(self, start: datetime) -> datetime | None:
        """An instant no later than the first a window of a bucket from ``start`` on reads; None for all time.

        A bound computed here, not in SQL, is a constant the backend prunes its scan with (DuckDB's zone maps,
        PostgreSQL's index); the windows themselves then pick their rows exactly.
        """
        if self.window.kind is WindowKind.ALL:
            return None
        back = _LONGEST[self.grain] + _ZONE_SLACK  # the first bucket starts at most a bucket before ``start``
        if self.window.unit is not None:
            back += max(self.window.amount, 1) * _LONGEST[self.window.unit]
        elif self.window.kind is WindowKind.PREVIOUS:
            back += _LONGEST[self.grain]
        try:
            return start - back
        except OverflowError:
            return None

    def latest_read(self, end: datetime) -> datetime | None:
        """An instant after every one a window of a bucket before ``end`` reads; None past year 9999."""
        try:
            return end + _LONGEST[self.grain] + _ZONE_SLACK
        except OverflowError:
            return None

    @property
    def distinct_column(self) -> str | None:
        """The column every measure counts the distinct values of, if so: then each input bucket's distinct
        values stand for its rows (a user active on 20 of 28 days is read 20 times, not once per query)."""
        columns = {m.column for _, m in self.measures if m.aggregation is Aggregation.COUNT_DISTINCT and not m.filter}
        every = len(columns) == 1 and all(m.aggregation is Aggregation.COUNT_DISTINCT for _, m in self.measures)
        return next(iter(columns)) if every else None

    def __str__(self) -> str:
        listed = ", ".join(name for name, _ in self.measures)
        grain = self.input_grain.value  # windows of a fact reading the same grain share one scan (window_inputs)
        how = f"partial sums per {grain}" if self.additive else "raw rows"
        how = f"distinct values per {grain}" if self.distinct_column else how
        by = ", ".join(ref.key for ref in self.partitions)
        per = f" per {by}" if by else ""
        return f"window {self.fact} over {self.window} of each {self.grain.value}{per}, from {how}: {listed}"


def leaf_name(measure: str, window: Window) -> str:
    """A windowed measure's name in the plan and its column label."""
    return f"{measure}__{window.tag}"


def _local_bucket(moment: datetime, grain: TimeGrain, zone: ZoneInfo) -> datetime:
    """The wall-clock start of the bucket (a day or longer) that holds a naive UTC instant in ``zone``."""
    day = moment.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    return {
        TimeGrain.DAY: day,
        TimeGrain.WEEK: day - timedelta(days=day.weekday()),
        TimeGrain.MONTH: day.replace(day=1),
        TimeGrain.QUARTER: day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1),
        TimeGrain.YEAR: day.replace(month=1, day=1),
    }[grain]


def _starts_bucket(moment: datetime, grain: TimeGrain, zone: ZoneInfo) -> bool:
    try:
        return _local_bucket(moment - timedelta(microseconds=1), grain, zone) != _local_bucket(moment, grain, zone)
    except OverflowError:  # next to year 1 or 9999: no bucket boundary worth sharing a scan for
        return False


def whole_bucket_facts(
    windows: Sequence[WindowAggregate], start: datetime | None, end: datetime | None, timezone: str
) -> frozenset[str]:
    """The facts whose plain metrics a request reads as each bucket's own window, so that they share the scan
    of the fact's windows at the request's grain (a previous-period comparison reads each bucket once).

    Only where the requested range starts and ends on bucket boundaries (minutes and hours only without a
    range): then a bucket's window holds exactly the rows its plain aggregate counts, and every row it adds
    (a bucket without rows, counts 0) is one the fact's other windows add already.
    """
    facts = frozenset(window.fact for window in windows if window.input_grain is window.grain)
    if not facts:
        return facts
    grain, ends = windows[0].grain, [moment for moment in (start, end) if moment is not None]
    if ends and (grain in _CLOCK or not all(_starts_bucket(moment, grain, ZoneInfo(timezone)) for moment in ends)):
        return frozenset()
    return facts
