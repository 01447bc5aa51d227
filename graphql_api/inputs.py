"""Filter inputs of the GraphQL schema and their translation into compiler requests.

The per-type operator inputs are static; the ``where`` and ``having`` inputs
are generated from the registry in ``schema``. Everything a client sends is
turned into frozen request values here, so the compiler sees nothing GraphQL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any, NewType

import strawberry

from metrics.compiler import And, DimensionRef, Filter, MetricCondition, Not, Or, Predicate
from metrics.errors import InvalidFilter, InvalidRequest
from metrics.model import DataType, FilterOp
from metrics.timezones import check_time_zone
from metrics.validation import camel


def _time_zone(value: object) -> str:
    """A known zone name; GraphQL reports anything else as the argument's error, before a resolver runs."""
    if not isinstance(value, str):
        raise ValueError(f"a time zone is an IANA name such as 'Europe/Berlin', not {value!r}")
    try:
        return check_time_zone(value)
    except InvalidRequest as error:
        raise ValueError(str(error)) from None


TimeZone = NewType("TimeZone", str)
"""A request's time zone; the schema maps it to ``TIME_ZONE``, which refuses unknown zones during validation."""
TIME_ZONE = strawberry.scalar(
    name="TimeZone",
    serialize=str,
    parse_value=_time_zone,
    description="An IANA time zone that both warehouses know, such as 'Europe/Berlin' or 'UTC'.",
)


@strawberry.input(description="Conditions on a text attribute; all given conditions must hold.")
class StringFilter:
    eq: str | None = None
    neq: str | None = strawberry.field(default=None, description="Not equal; rows where the value is null match too.")
    in_: list[str] | None = strawberry.field(default=None, name="in")
    not_in: list[str] | None = strawberry.field(default=None, description="Not any of these; null matches too.")
    is_null: bool | None = None
    like: str | None = strawberry.field(
        default=None,
        description="SQL LIKE pattern: % any run, _ one character; a backslash escapes them (\\%, \\_, \\\\).",
    )


@strawberry.input(description="Conditions on a whole-number attribute.")
class IntFilter:
    eq: int | None = None
    neq: int | None = None
    in_: list[int] | None = strawberry.field(default=None, name="in")
    not_in: list[int] | None = None
    is_null: bool | None = None
    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None


@strawberry.input(description="Conditions on a number.")
class FloatFilter:
    eq: float | None = None
    neq: float | None = None
    in_: list[float] | None = strawberry.field(default=None, name="in")
    not_in: list[float] | None = None
    is_null: bool | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


@strawberry.input(description="Conditions on a true/false attribute.")
class BooleanFilter:
    eq: bool | None = None
    neq: bool | None = None
    is_null: bool | None = None


@strawberry.input(description="Conditions on a metric value after aggregation.")
class NumberFilter:
    eq: float | None = None
    neq: float | None = None
    is_null: bool | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


@strawberry.input(
    description="Conditions on a metric whose value is a time (a min or max of timestamps), ISO-8601 with offset."
)
class DateTimeFilter:
    eq: datetime | None = None
    neq: datetime | None = None
    is_null: bool | None = None
    gt: datetime | None = None
    gte: datetime | None = None
    lt: datetime | None = None
    lte: datetime | None = None


@strawberry.input(description="Event time range: from inclusive, to exclusive (ISO-8601 with offset).")
class TimeRangeInput:
    from_: datetime | None = strawberry.field(default=None, name="from")
    to: datetime | None = None


@strawberry.enum
class Direction(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.input(
    description="Order by a selected metric or dimension attribute (GraphQL name, alias, or path like tier.name)."
)
class OrderByInput:
    field: str
    direction: Direction = Direction.ASC


FILTER_INPUTS: dict[DataType, type] = {
    DataType.STRING: StringFilter,
    DataType.INTEGER: IntFilter,
    DataType.FLOAT: FloatFilter,
    DataType.BOOLEAN: BooleanFilter,
}

_OPS = {"in_": FilterOp.IN, "not_in": FilterOp.NOT_IN, "is_null": FilterOp.IS_NULL}


def _given(value: Any) -> list[tuple[str, Any]]:
    return [
        (f.name, getattr(value, f.name))
        for f in dataclasses.fields(value)
        if getattr(value, f.name) is not None and getattr(value, f.name) is not strawberry.UNSET
    ]


def conditions(ref: DimensionRef, operators: Any) -> list[Filter]:
    """One predicate per operator given in a filter input."""
    found: list[Filter] = []
    for name, value in _given(operators):
        op = _OPS.get(name) or FilterOp(name)
        found.append(Predicate(ref, op, tuple(value) if isinstance(value, list) else value))
    return found


def combine(items: list[Filter]) -> Filter | None:
    if not items:
        return None
    return items[0] if len(items) == 1 else And(tuple(items))


def boolean_parts(where: Any, convert: Any) -> list[Filter]:
    """``and``/``or``/``not`` of a where input, each converted by ``convert``; an empty list is refused, not ignored."""
    parts: list[Filter] = []
    for name in ("and_", "or_"):
        if getattr(where, name, None) == []:
            raise InvalidFilter(f"where.{name[:-1]} is an empty list; give it at least one condition, or leave it out")
    if getattr(where, "and_", None):
        parts.extend(item for item in (convert(w) for w in where.and_) if item is not None)
    if getattr(where, "or_", None):
        branches = [convert(w) for w in where.or_]
        parts.append(Or(tuple(b if b is not None else And(()) for b in branches)))
    if getattr(where, "not_", None):
        negated = convert(where.not_)
        if negated is not None:
            parts.append(Not(negated))
    return parts


def time_bound(name: str, value: datetime | None, *, within: str = "where.time") -> datetime | None:
    """A time to compare with; one without an offset is refused, since its instant depends on a zone nobody named."""
    if value is not None and value.tzinfo is None:
        raise InvalidFilter(
            f"{within}.{name}: {value.isoformat()!r} has no UTC offset; "
            f"add one, e.g. {value.isoformat()}Z or {value.isoformat()}+01:00"
        )
    return value


def having_conditions(having: Any, selected: Sequence[str]) -> tuple[MetricCondition, ...]:
    """``having`` fields are named like the metrics (snake_case in Python), so each names its metric.

    A condition on a metric that is not selected is refused here, whatever else the request holds:
    batching may add other fields' metrics to the compiled query, where it would then pass.
    """
    found = []
    for metric, operators in _given(having):
        if metric not in selected:
            raise InvalidFilter(
                f"having names {camel(metric)}, which is not selected under rows; select it to filter on it"
            )
        for name, value in _given(operators):
            if isinstance(value, datetime):
                time_bound(name, value, within=f"having.{camel(metric)}")
            found.append(MetricCondition(metric, _OPS.get(name) or FilterOp(name), value))
    return tuple(found)
