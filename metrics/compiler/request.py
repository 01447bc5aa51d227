"""What a client asks for: metrics, dimension attributes, filters, order, paging, time zone.

Plain frozen values that name things by registry names; ``spec.resolve``
checks them against the registry. Built by the GraphQL layer, or directly by
notebooks and pipelines (``DimensionRef.parse("tier.name")``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from metrics.errors import UnknownDimension
from metrics.model import FilterOp, Metric, TimeGrain

if TYPE_CHECKING:
    from metrics.policy import Scope

TIME_PARTS = ("day_of_week", "hour_of_day", "is_weekend")


@dataclass(frozen=True)
class DimensionRef:
    """One dimension attribute: ``tier.name``, ``verification_status``, ``time.day``, ``time.day_of_week``."""

    dimension: str
    attribute: str | None = None
    grain: TimeGrain | None = None

    @classmethod
    def parse(cls, text: str) -> DimensionRef:
        dimension, _, attribute = text.partition(".")
        if dimension == "time":
            if attribute in TIME_PARTS:
                return cls("time", attribute)
            grains = [grain.value for grain in TimeGrain]
            if attribute not in grains:
                known = [f"time.{name}" for name in (*grains, *TIME_PARTS)]
                raise UnknownDimension(
                    text, known, hint=f"; time needs a grain ({', '.join(grains)}) or one of {', '.join(TIME_PARTS)}"
                )
            return cls("time", grain=TimeGrain(attribute))
        return cls(dimension, attribute or None)

    @property
    def key(self) -> str:
        """The name of this attribute's output column; stable, readable, unique within a request."""
        if self.grain is not None:
            return f"time.{self.grain.value}"
        return f"{self.dimension}.{self.attribute}" if self.attribute else self.dimension


@dataclass(frozen=True)
class Predicate:
    ref: DimensionRef
    op: FilterOp
    value: object

    def __str__(self) -> str:
        return f"{self.ref.key} {self.op.value} {self.value!r}"


@dataclass(frozen=True)
class And:
    items: tuple[Filter, ...]

    def __str__(self) -> str:
        return "(" + " and ".join(map(str, self.items)) + ")"


@dataclass(frozen=True)
class Or:
    items: tuple[Filter, ...]

    def __str__(self) -> str:
        return "(" + " or ".join(map(str, self.items)) + ")"


@dataclass(frozen=True)
class Not:
    """The complement of ``item``: a predicate on a null value is false, so ``Not`` keeps null rows
    (``not {eq: x}`` is ``neq: x``, as ``notIn`` also keeps nulls), unlike SQL's three-valued NOT."""

    item: Filter

    def __str__(self) -> str:
        return f"not {self.item}"


Filter = Predicate | And | Or | Not


def naive_utc(moment: datetime) -> datetime:
    """The warehouse's form of an instant: naive UTC. Every naive datetime in a request (time range,
    filter or having value) already means UTC, whatever the request's time zone."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


@dataclass(frozen=True)
class TimeRange:
    """Event time ``start <= t < end``; naive datetimes are UTC."""

    start: datetime | None = None
    end: datetime | None = None


HAVING_OPERATORS = (FilterOp.EQ, FilterOp.NEQ, FilterOp.GT, FilterOp.GTE, FilterOp.LT, FilterOp.LTE, FilterOp.IS_NULL)
"""What a ``having`` condition may use: comparisons of one aggregated value."""


@dataclass(frozen=True)
class MetricCondition:
    """A ``having`` condition on an aggregated metric value."""

    metric: str
    op: FilterOp
    value: object


@dataclass(frozen=True)
class OrderBy:
    """Order by a requested metric (its name) or dimension attribute (its ``key``)."""

    field: str
    descending: bool = False


@dataclass(frozen=True)
class MetricRequest:
    metrics: tuple[str, ...]
    dimensions: tuple[DimensionRef, ...] = ()
    where: Filter | None = None
    time_range: TimeRange | None = None
    having: tuple[MetricCondition, ...] = ()
    order_by: tuple[OrderBy, ...] = ()
    limit: int | None = None
    offset: int = 0
    timezone: str = "UTC"
    total_count: bool = False
    """Also count the rows before limit and offset (``totalCount``), which makes the database compute them all."""
    scope: Scope | None = None
    """The caller's access scope (``metrics.policy``); None means unrestricted. Part of every cache key."""
    fill_gaps: bool = False
    """Return every time bucket of the range for every metric (counts 0, other values null or the metric's fill)."""
    derived: tuple[Metric, ...] = ()
    """Metrics the request defines itself (``compiler.adhoc``), selectable by name like the registry's."""
    rollups: bool = True
    """Read rollups where they give exactly the same answer; False reads the facts (for comparison)."""
