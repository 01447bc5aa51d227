"""A request checked against the registry: every name known, every dimension allowed, every value typed.

All user mistakes surface here as typed errors naming what to change, before
any SQL exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from metrics.compiler.request import (
    HAVING_OPERATORS,
    TIME_PARTS,
    And,
    DimensionRef,
    Filter,
    MetricRequest,
    Not,
    Or,
    Predicate,
    TimeRange,
    naive_utc,
)
from metrics.compiler.time_relative import check_time_grain
from metrics.errors import InvalidFilter, InvalidRequest, LimitExceeded, UnknownDimension
from metrics.model import DataType, FilterOp
from metrics.registry import TIME, Registry
from metrics.timezones import check_time_zone
from metrics.validation import camel

_TIME_PART_TYPES = {"day_of_week": DataType.INTEGER, "hour_of_day": DataType.INTEGER, "is_weekend": DataType.BOOLEAN}
_ORDERED = (FilterOp.GT, FilterOp.GTE, FilterOp.LT, FilterOp.LTE)
_INT64 = range(-(2**63), 2**63)

MAX_FILTER_DEPTH = 16
"""How deep ``and``/``or``/``not`` may nest: beyond what a person writes, well within what SQL building can recurse."""
MAX_FILTER_VALUES = 10_000
"""Values all filters of a request may hold together; with ``MAX_PARAMETERS`` this keeps PostgreSQL's driver
(32,767 parameters a statement) out of reach, so both backends answer alike."""


@dataclass(frozen=True)
class QuerySpec:
    """A request the registry can answer; time range in naive UTC."""

    request: MetricRequest
    dimension_types: tuple[DataType, ...]
    start: datetime | None
    end: datetime | None

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.request.metrics


def attribute_type(registry: Registry, ref: DimensionRef) -> DataType:
    """The type of a dimension attribute; raises ``UnknownDimension`` with a suggestion."""
    if ref.dimension == TIME:
        if ref.grain is not None:
            return DataType.TIMESTAMP
        if ref.attribute in TIME_PARTS:
            return _TIME_PART_TYPES[ref.attribute]
        raise UnknownDimension(ref.key, [f"time.{part}" for part in TIME_PARTS])
    dimension = registry.dimension(ref.dimension)
    if not dimension.is_table:
        if ref.attribute is not None:
            raise UnknownDimension(ref.key, [dimension.name])
        return dimension.type
    attribute = dimension.attribute(ref.attribute or "")
    if attribute is None:
        raise UnknownDimension(ref.key, [f"{dimension.name}.{a.name}" for a in dimension.attributes])
    return attribute.type


def predicates(where: Filter | None) -> Iterator[Predicate]:
    if isinstance(where, Predicate):
        yield where
    elif isinstance(where, (And, Or)):
        for item in where.items:
            yield from predicates(item)
    elif isinstance(where, Not):
        yield from predicates(where.item)


def _article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" else "a"


def check_value(what: str, data_type: DataType, op: FilterOp, value: object) -> None:
    if op is FilterOp.IS_NULL:
        if not isinstance(value, bool):
            raise InvalidFilter(f"{what}: isNull takes true or false, not {value!r}")
        return
    if op in _ORDERED and not (data_type.is_numeric or data_type is DataType.TIMESTAMP):
        raise InvalidFilter(f"{what}: {op.value} applies to numbers and times, not to {data_type.value} values")
    if op is FilterOp.LIKE and data_type is not DataType.STRING:
        raise InvalidFilter(f"{what}: like applies to strings only")
    values = value if op in (FilterOp.IN, FilterOp.NOT_IN) else (value,)
    if op in (FilterOp.IN, FilterOp.NOT_IN) and not isinstance(value, (list, tuple)):
        raise InvalidFilter(f"{what}: {op.value} takes a list of values")
    for item in values:  # type: ignore[union-attr]
        if not data_type.accepts(item):
            raise InvalidFilter(f"{what}: {item!r} is not {_article(data_type.value)} {data_type.value} value")
        _check_representable(what, item)
    if op is FilterOp.LIKE and _ends_in_escape(value):  # type: ignore[arg-type]
        raise InvalidFilter(
            f"{what}: the like pattern {_shown(value)} ends in the escape character \\; "
            "write \\\\ for a backslash, \\% and \\_ for a literal % and _"
        )


def _ends_in_escape(pattern: str) -> bool:
    """Whether the last backslash of ``pattern`` escapes nothing (an odd run of them ends it)."""
    return (len(pattern) - len(pattern.rstrip("\\"))) % 2 == 1


def _shown(text: str) -> str:
    """``text`` quoted for a message, cut short: the value may be as long as the request."""
    return repr(text) if len(text) <= 60 else f"{text[:60]!r}..."


def _check_representable(what: str, value: object) -> None:
    """A value both warehouses can store and compare: what one backend would refuse is refused for both."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidFilter(f"{what}: {_shown(value)} holds a NUL character (\\u0000), which no text can hold")
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                raise InvalidFilter(
                    f"{what}: {_shown(value)} holds a lone surrogate, which is not a character; send valid Unicode"
                ) from None
    elif isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
        raise InvalidFilter(f"{what}: {value} is outside the 64-bit integer range")
    elif isinstance(value, datetime):
        instant(what, value)


def instant(what: str, moment: datetime) -> datetime:
    """``moment`` in naive UTC; a time whose UTC instant falls outside years 1-9999 is refused, naming it."""
    try:
        return naive_utc(moment)
    except OverflowError:
        raise InvalidFilter(
            f"{what}: {moment.isoformat()} is out of range: in UTC it falls before year 1 or after year 9999"
        ) from None


def check_filter_shape(where: Filter | None) -> None:
    """Nesting and size of a filter tree, checked without recursion (a tree from Python may be arbitrarily deep)."""
    pending: list[tuple[Filter, int]] = [] if where is None else [(where, 0)]
    values = 0
    while pending:
        node, above = pending.pop()  # above: the and/or/not enclosing it
        if isinstance(node, (And, Or, Not)) and above + 1 > MAX_FILTER_DEPTH:
            raise LimitExceeded(
                f"where nests and/or/not more than {MAX_FILTER_DEPTH} levels deep; flatten it (and/or take lists)"
            )
        if isinstance(node, (And, Or)):
            pending.extend((item, above + 1) for item in node.items)
        elif isinstance(node, Not):
            pending.append((node.item, above + 1))
        else:
            values += len(node.value) if isinstance(node.value, (list, tuple)) else 1
    if values > MAX_FILTER_VALUES:
        raise LimitExceeded(
            f"the filters hold {values:,} values, more than the maximum of {MAX_FILTER_VALUES:,}; "
            "filter on a coarser attribute, or split the request"
        )


def check_paging(limit: int | None, offset: int, max_limit: int | None) -> None:
    """Paging every query shares: nothing negative, and no page larger than the server allows."""
    if (limit is not None and limit < 0) or offset < 0:
        raise InvalidRequest(f"limit and offset must not be negative (got limit {limit}, offset {offset})")
    if max_limit is not None and limit is not None and limit > max_limit:
        raise LimitExceeded(f"limit {limit} exceeds the maximum of {max_limit} rows; page with limit and offset")


def resolve(request: MetricRequest, registry: Registry, *, max_limit: int | None = None) -> QuerySpec:
    if not request.metrics:
        raise InvalidRequest("select at least one metric")
    if len(set(request.metrics)) != len(request.metrics):
        raise InvalidRequest("a metric is selected twice; select each metric once (aliases may repeat it)")
    for metric in request.metrics:
        registry.metric(metric)
    keys = [ref.key for ref in request.dimensions]
    if len(set(keys)) != len(keys):
        raise InvalidRequest("a dimension attribute is selected twice; select each once (aliases may repeat it)")
    types = tuple(attribute_type(registry, ref) for ref in request.dimensions)
    check_filter_shape(request.where)
    for predicate in predicates(request.where):
        check_value(
            f"filter on {predicate.ref.key}", attribute_type(registry, predicate.ref), predicate.op, predicate.value
        )
    for ref in (*request.dimensions, *(p.ref for p in predicates(request.where))):
        for metric in request.metrics:
            registry.check_dimension(metric, ref.dimension)
    check_time_grain(request, registry)
    for condition in request.having:
        if condition.metric not in request.metrics:
            raise InvalidFilter(f"having names {condition.metric!r}, which is not selected; select it to filter on it")
        if condition.op not in HAVING_OPERATORS:
            raise InvalidFilter(
                f"having on {condition.metric!r}: use {', '.join(camel(op.value) for op in HAVING_OPERATORS)}"
            )
        output = registry.output_type(condition.metric)
        check_value(
            f"having on {condition.metric}",
            DataType.FLOAT if output.is_numeric else output,
            condition.op,
            condition.value,
        )
    for order in request.order_by:
        if order.field not in request.metrics and order.field not in keys:
            raise InvalidRequest(
                f"cannot order by {order.field!r}: order by a selected metric or dimension "
                f"({', '.join([*request.metrics, *keys])})"
            )
    check_paging(request.limit, request.offset, max_limit)
    check_time_zone(request.timezone)
    time_range = request.time_range or TimeRange()
    start, end = (
        None if moment is None else instant(f"time range {name}", moment)
        for name, moment in (("from", time_range.start), ("to", time_range.end))
    )
    if start is not None and end is not None and start > end:
        raise InvalidFilter("time range: from is after to")
    return QuerySpec(request, types, start, end)
