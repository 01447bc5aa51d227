"""SQL constructs the builder uses, rendered per backend by ``@compiles`` hooks.

Most have one default rendering that DuckDB and PostgreSQL share; a backend
that differs gets its own hook here, never a branch in the builder.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from metrics.model import TimeGrain

_ONE_DAY = sa.literal_column("INTERVAL '1 day'", sa.Interval())


class local_time(FunctionElement[Any]):
    """A naive UTC timestamp as wall-clock time in a zone (DST included): ``local_time(ts, tz)``."""

    type = sa.DateTime()
    inherit_cache = True
    name = "local_time"


@compiles(local_time)
def _local_time(element: local_time, compiler: Any, **kw: Any) -> str:
    timestamp, zone = element.clauses
    utc = f"({compiler.process(timestamp.self_group(), **kw)} AT TIME ZONE 'UTC')"
    return f"({utc} AT TIME ZONE {compiler.process(zone, **kw)})"


class truncate(FunctionElement[Any]):
    """Start of the ``grain`` bucket containing a timestamp; weeks start on Monday (ISO)."""

    type = sa.DateTime()
    inherit_cache = True
    name = "truncate"

    def __init__(self, grain: TimeGrain, timestamp: ColumnElement[Any]) -> None:
        self.grain = grain
        super().__init__(timestamp)


@compiles(truncate)
def _truncate(element: truncate, compiler: Any, **kw: Any) -> str:
    return f"date_trunc('{element.grain.value}', {compiler.process(element.clauses, **kw)})"


def _offset(instant: ColumnElement[Any], zone: ColumnElement[str]) -> ColumnElement[Any]:
    """The zone's UTC offset at a naive UTC instant, as an interval."""
    return local_time(instant, zone) - instant


def _first_instant(wall: ColumnElement[Any], zone: ColumnElement[str]) -> ColumnElement[Any]:
    """The first real instant (naive UTC) at which the zone's clocks read ``wall``.

    The offsets a day before and a day after ``wall`` are the candidates: where
    the clocks read ``wall`` twice (autumn), the earlier offset gives the first
    reading; where they never read it (spring, or a zone that skips midnight),
    the offset before the change gives the instant the clocks jump past it.
    """
    before = wall - _offset(wall - _ONE_DAY, zone)
    after = wall - _offset(wall + _ONE_DAY, zone)
    return sa.case((sa.and_(local_time(before, zone) != wall, local_time(after, zone) == wall), after), else_=before)


_CLOCK_GRAINS = (TimeGrain.MINUTE, TimeGrain.HOUR)


def bucket_start(
    grain: TimeGrain, timestamp: ColumnElement[Any], zone: ColumnElement[str] | None
) -> ColumnElement[Any]:
    """The first instant (naive UTC) of the ``grain`` bucket that holds a naive UTC timestamp in a zone.

    Buckets are instants, never wall-clock readings: in autumn the repeated
    hour is two hour buckets, not one. Minutes and hours keep the row's own
    offset (so a half-hour zone such as Asia/Kolkata gets its own hours);
    days and longer start at the first instant of the local date. Only
    ``local_time`` and ``truncate`` touch the backend, so every backend gets
    the same instants.
    """
    if zone is None:
        return truncate(grain, timestamp)
    local = local_time(timestamp, zone)
    wall = truncate(grain, local)
    if grain not in _CLOCK_GRAINS:
        return _first_instant(wall, zone)
    own = timestamp - (local - wall)
    return sa.case((local_time(own, zone) == wall, own), else_=_first_instant(wall, zone))


def bucket_group(
    grain: TimeGrain, timestamp: ColumnElement[Any], zone: ColumnElement[str] | None
) -> ColumnElement[Any]:
    """What rows are grouped by for a bucket; ``bucket_of_group`` turns it into the bucket's start.

    Days and longer group by their local start (every row of a local date
    shares it), so the costlier search for its first instant runs once per
    group instead of once per row; other buckets group by their instant.
    """
    if zone is not None and grain not in _CLOCK_GRAINS:
        return truncate(grain, local_time(timestamp, zone))
    return bucket_start(grain, timestamp, zone)


def bucket_of_group(grain: TimeGrain, group: ColumnElement[Any], zone: ColumnElement[str] | None) -> ColumnElement[Any]:
    return _first_instant(group, zone) if zone is not None and grain not in _CLOCK_GRAINS else group


class iso_day_of_week(FunctionElement[Any]):
    """1 = Monday .. 7 = Sunday."""

    type = sa.Integer()
    inherit_cache = True
    name = "iso_day_of_week"


@compiles(iso_day_of_week)
def _iso_day_of_week(element: iso_day_of_week, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(ISODOW FROM {compiler.process(element.clauses, **kw)}) AS INTEGER)"


class hour_of_day(FunctionElement[Any]):
    type = sa.Integer()
    inherit_cache = True
    name = "hour_of_day"


@compiles(hour_of_day)
def _hour_of_day(element: hour_of_day, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(HOUR FROM {compiler.process(element.clauses, **kw)}) AS INTEGER)"


class percentile_cont(FunctionElement[Any]):
    """Continuous percentile (linear interpolation between closest ranks) of non-null values."""

    type = sa.Double()
    inherit_cache = True
    name = "percentile_cont"

    def __init__(self, fraction: float, value: ColumnElement[Any]) -> None:
        self.fraction = float(fraction)
        super().__init__(value)


@compiles(percentile_cont)
def _percentile_cont(element: percentile_cont, compiler: Any, **kw: Any) -> str:
    # The fraction comes from validated config, never from a request; some engines need it constant.
    value = compiler.process(element.clauses, **kw)
    return f"percentile_cont({element.fraction!r}) WITHIN GROUP (ORDER BY CAST({value} AS DOUBLE PRECISION))"


class seconds_between(FunctionElement[Any]):
    """Float seconds from ``start`` to ``end`` (negative if end is earlier; null if either is null).

    Exact on every backend: the whole microseconds of the span, divided once,
    give the correctly rounded double; subtracting two epochs in floating point
    would not.
    """

    type = sa.Double()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between)
def _seconds_between(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(date_diff('microsecond', {start}, {end}) AS DOUBLE) / 1000000.0"


@compiles(seconds_between, "postgresql")
def _seconds_between_postgresql(element: seconds_between, compiler: Any, **kw: Any) -> str:
    # EXTRACT of an interval is an exact numeric since PostgreSQL 14; the cast rounds it once.
    start, end = (compiler.process(clause.self_group(), **kw) for clause in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS DOUBLE PRECISION)"


class byte_order(FunctionElement[Any]):
    """Text compared by bytes, as DuckDB does by default; PostgreSQL follows the database's collation otherwise."""

    type = sa.Text()
    inherit_cache = True
    name = "byte_order"


@compiles(byte_order)
def _byte_order(element: byte_order, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(byte_order, "postgresql")
def _byte_order_postgresql(element: byte_order, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)} COLLATE "C")'


def as_double(value: ColumnElement[Any]) -> ColumnElement[float]:
    return value if isinstance(value.type, sa.Double) else sa.cast(value, sa.Double())


EXACT_DECIMAL = sa.Numeric(38, 9)
"""The type floats are summed in: exact, so the sum does not depend on the order rows are added."""


def decimal_sum(value: ColumnElement[Any], condition: ColumnElement[bool] | None) -> ColumnElement[Any]:
    """The exact DECIMAL sum of ``value`` (where ``condition`` holds); sums of such sums are exact too."""
    total: Any = sa.func.sum(sa.cast(value, EXACT_DECIMAL))
    return total if condition is None else total.filter(condition)


def decimal_to_double(total: ColumnElement[Any]) -> ColumnElement[float]:
    """An exact DECIMAL as a double: going through text gives one correctly rounded conversion on every backend."""
    return sa.cast(sa.cast(total, sa.Text()), sa.Double())


def exact_sum(value: ColumnElement[Any], condition: ColumnElement[bool] | None) -> ColumnElement[float]:
    """A sum of floats that every backend gets to the same double.

    Floating-point sums depend on the order rows are added, which differs by
    backend and plan; a DECIMAL sum is exact (``decimal_sum``), converted once (``decimal_to_double``).
    """
    return decimal_to_double(decimal_sum(value, condition))


def divide(numerator: ColumnElement[Any], denominator: ColumnElement[Any]) -> ColumnElement[float]:
    """Null, not an error and not 0, where the denominator is 0 or null."""
    return as_double(numerator) / sa.func.nullif(as_double(denominator), 0, type_=sa.Double())


class bucket_series(FunctionElement[Any]):
    """One row per bucket from ``first`` to ``last`` (both included), ``step`` apart: ``bucket_series(a, b, step)``.

    A set-returning call in a select list: PostgreSQL's ``generate_series`` is one already; DuckDB's returns a
    list, which ``unnest`` turns into rows.
    """

    type = sa.DateTime()
    inherit_cache = True
    name = "bucket_series"


@compiles(bucket_series)
def _bucket_series(element: bucket_series, compiler: Any, **kw: Any) -> str:
    return f"unnest(generate_series({compiler.process(element.clauses, **kw)}))"


@compiles(bucket_series, "postgresql")
def _bucket_series_postgresql(element: bucket_series, compiler: Any, **kw: Any) -> str:
    return f"generate_series({compiler.process(element.clauses, **kw)})"


_UNITS = {TimeGrain.MINUTE: (1, "minutes"), TimeGrain.HOUR: (1, "hours"), TimeGrain.DAY: (1, "days")}
_UNITS |= {TimeGrain.WEEK: (7, "days"), TimeGrain.MONTH: (1, "months"), TimeGrain.QUARTER: (3, "months")}
_UNITS |= {TimeGrain.YEAR: (1, "years")}


def calendar_interval(amount: int, unit: TimeGrain) -> ColumnElement[Any]:
    """``amount`` units as a calendar interval (a month is a month, a day a day, on naive wall-clock times).

    Rendered as a literal: the amount is an ``int`` from validated config or a checked request, and interval
    arithmetic on a bound parameter is typed differently by every backend.
    """
    factor, name = _UNITS[unit]
    return sa.literal_column(f"INTERVAL '{int(amount) * factor} {name}'", sa.Interval())
