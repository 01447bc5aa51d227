"""Time-relative metrics in plain Python: buckets of a range, the window each reads, values per bucket and group.

Follows the text of catalog.md ("Time-relative metrics"): calendar arithmetic on the zone's wall-clock
readings (a day is a calendar day of 23, 24 or 25 hours), ISO weeks, the requested range picking buckets
but never cutting windows, every bucket of the range present for every group present in the range.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.metrics.reference import FACTS, METRICS, Reference, Row
from tests.metrics.reference.aggregates import FactMetric
from tests.metrics.reference.buckets import bucket_start, first_instant

Bounds = tuple[datetime | None, datetime]
Span = Callable[[datetime, datetime, str, ZoneInfo], Bounds]
"""(bucket start S, bucket end E, grain, zone) -> the instants [lo, hi) the bucket reads (lo None: no start)."""

_CLOCK = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1)}
_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def add(reading: datetime, amount: int, unit: str) -> datetime:
    """Calendar arithmetic on a wall-clock reading; a month from Jan 31 is the last day of February."""
    if unit in ("day", "week"):
        return reading + timedelta(days=amount * (7 if unit == "week" else 1))
    months = reading.month - 1 + amount * _MONTHS[unit]
    year, month = reading.year + months // 12, months % 12 + 1
    return reading.replace(year=year, month=month, day=min(reading.day, monthrange(year, month)[1]))


def _local_start(start: datetime, grain: str, zone: ZoneInfo) -> datetime:
    """The wall reading a calendar bucket starts at (midnight of its first local date, even where it is skipped)."""
    return wall(start, zone).replace(hour=0, minute=0, second=0, microsecond=0)


def next_start(start: datetime, grain: str, zone: ZoneInfo) -> datetime:
    if grain in _CLOCK:
        return start + _CLOCK[grain]
    return first_instant(add(_local_start(start, grain, zone), 1, grain), zone)


def buckets(start: datetime, end: datetime, grain: str, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """Every bucket [S, E) that holds an instant of [start, end)."""
    found, moment = [], bucket_start(start, grain, zone)
    while moment < end:
        following = next_start(moment, grain, zone)
        found.append((moment, following))
        moment = following
    return found


def trailing(amount: int, unit: str) -> Span:
    def span(start: datetime, end: datetime, grain: str, zone: ZoneInfo) -> Bounds:
        reading = wall(end, zone) if grain in _CLOCK else _local_start(end, grain, zone)
        return first_instant(add(reading, -amount, unit), zone), end

    return span


def to_date(unit: str) -> Span:
    def span(start: datetime, end: datetime, grain: str, zone: ZoneInfo) -> Bounds:
        day = wall(start, zone).replace(hour=0, minute=0, second=0, microsecond=0)
        if unit == "week":
            day -= timedelta(days=day.weekday())
        elif unit == "month":
            day = day.replace(day=1)
        elif unit == "quarter":
            day = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
        else:
            day = day.replace(month=1, day=1)
        return first_instant(day, zone), end

    return span


def running(start: datetime, end: datetime, grain: str, zone: ZoneInfo) -> Bounds:
    return None, end


def this_bucket(start: datetime, end: datetime, grain: str, zone: ZoneInfo) -> Bounds:
    return start, end


def previous(start: datetime, end: datetime, grain: str, zone: ZoneInfo) -> Bounds:
    if grain in _CLOCK:
        return start - _CLOCK[grain], start
    return first_instant(add(_local_start(start, grain, zone), -1, grain), zone), start


def shifted(amount: int, unit: str) -> Span:
    """The bucket of the same grain starting ``amount units`` before S."""

    def span(start: datetime, end: datetime, grain: str, zone: ZoneInfo) -> Bounds:
        reading = wall(start, zone) if grain in _CLOCK else _local_start(start, grain, zone)
        earlier = add(reading, -amount, unit)
        lo = first_instant(earlier, zone)
        return lo, lo + _CLOCK[grain] if grain in _CLOCK else first_instant(add(earlier, 1, grain), zone)

    return span


@dataclass(frozen=True)
class Windowed:
    """``base`` (a plain catalog metric) over ``span`` of each bucket."""

    base: str
    span: Span


@dataclass(frozen=True)
class Combined:
    """A derived time-relative metric: ``combine`` of its parts' values (each a ``Windowed``)."""

    parts: tuple[Windowed, ...]
    combine: Callable[..., Any]


def _difference(current: Any, earlier: Any) -> Any:
    return None if current is None or earlier is None else current - earlier


def _growth(current: Any, earlier: Any) -> Any:
    return None if current is None or not earlier else current / earlier - 1


TIME_RELATIVE: dict[str, Windowed | Combined] = {
    "verification_count_mtd": Windowed("verification_count", to_date("month")),
    "verification_count_7d": Windowed("verification_count", trailing(7, "day")),
    "verification_success_rate_7d": Windowed("verification_success_rate", trailing(7, "day")),
    "error_count_7d": Windowed("error_count", trailing(7, "day")),
    "unique_users_28d": Windowed("unique_users", trailing(28, "day")),
    "error_count_previous": Windowed("error_count", previous),
    "error_count_change": Combined(
        (Windowed("error_count", this_bucket), Windowed("error_count", previous)), _difference
    ),
    "approval_count_year_ago": Windowed("approval_count", shifted(1, "year")),
    "approval_count_previous": Windowed("approval_count", previous),
    "approval_count_growth": Combined(
        (Windowed("approval_count", this_bucket), Windowed("approval_count", previous)), _growth
    ),
    "p95_trace_latency_ms_week_ago": Windowed("p95_trace_latency_ms", shifted(1, "week")),
    "p95_trace_latency_ms_wow_change": Combined(
        (Windowed("p95_trace_latency_ms", this_bucket), Windowed("p95_trace_latency_ms", shifted(1, "week"))),
        _difference,
    ),
}


def _inside(moment: datetime, lo: datetime | None, hi: datetime) -> bool:
    return (lo is None or lo <= moment) and moment < hi


def compute(
    reference: Reference,
    metric: str | Windowed | Combined,
    grain: str,
    timezone: str,
    key: str | None,
    time_range: tuple[datetime, datetime],
    where: tuple[str, tuple[Any, ...]] | None = None,
) -> dict[tuple[datetime, Any], Any]:
    """``{(bucket start as aware UTC, group or None): value}`` for every bucket of the range and group present;
    ``where`` (an attribute and the values it may have) is the request's filter, applied to each window's rows."""
    definition = TIME_RELATIVE[metric] if isinstance(metric, str) else metric
    parts = definition.parts if isinstance(definition, Combined) else (definition,)
    zone, (start, end) = ZoneInfo(timezone), time_range
    facts = {part.base: METRICS[part.base] for part in parts}
    assert all(isinstance(fact, FactMetric) for fact in facts.values())
    fact_name = next(iter(facts.values())).fact  # type: ignore[union-attr]
    fact = FACTS[fact_name]
    rows = reference.rows(fact_name, by_practice=key == "practice")
    if where is not None:
        rows = [row for row in rows if reference.group(fact, row, where[0], zone) in where[1]]

    def group(row: Row) -> Any:
        return None if key is None else reference.group(fact, row, key, zone)

    spans = [
        [part.span(bucket_from, bucket_to, grain, zone) for part in parts]
        for bucket_from, bucket_to in buckets(start, end, grain, zone)
    ]
    read = [(lo, hi) for bounds in spans for lo, hi in bounds] + [(start, end)]
    present = {group(row) for row in rows if any(_inside(row[fact.time], lo, hi) for lo, hi in read)}
    answer: dict[tuple[datetime, Any], Any] = {}
    for (bucket_from, _), bounds in zip(buckets(start, end, grain, zone), spans, strict=True):
        for value in present if key else {None}:
            values = []
            for part, (lo, hi) in zip(parts, bounds, strict=True):
                inside = [row for row in rows if _inside(row[fact.time], lo, hi) and group(row) == value]
                values.append(facts[part.base].aggregate(inside))  # type: ignore[union-attr]
            combined = definition.combine(*values) if isinstance(definition, Combined) else values[0]
            answer[bucket_from.replace(tzinfo=UTC), value] = combined
    return answer
