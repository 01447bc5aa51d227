"""The ad hoc time-relative form of a metric field: ``verificationCount(window: {days: 7})`` or
``p95TraceLatencyMs(compare: PREVIOUS_PERIOD)``, for exploring without a config change.

The arguments become a ``Window`` here, once, both where the request is built (from the query's syntax tree)
and where a row's value is read (from the resolver's arguments); ``metrics.compiler.adhoc`` makes the metric.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import strawberry
from strawberry.types.field import StrawberryField

from graphql_api.types import Row
from metrics.compiler.adhoc import adhoc_name
from metrics.errors import InvalidRequest
from metrics.model import TimeGrain, Window, WindowKind

ToDateGrain = strawberry.enum(
    Enum("ToDateGrain", {"WEEK": "week", "MONTH": "month", "QUARTER": "quarter", "YEAR": "year"}),
    description="The period a to-date total restarts at; weeks are ISO weeks.",
)
Compare = strawberry.enum(
    Enum(
        "Compare",
        {
            "PREVIOUS_PERIOD": "previous_period",
            "DAY_AGO": "day",
            "WEEK_AGO": "week",
            "MONTH_AGO": "month",
            "QUARTER_AGO": "quarter",
            "YEAR_AGO": "year",
        },
    ),
    description="The earlier bucket whose value to return: the one before at the same grain, or the bucket of "
    "the same grain starting a calendar day, week, month, quarter or year before.",
)


@strawberry.input(
    name="MetricWindow",
    description="Which rows each time bucket [S, E) reads, in the request's time zone: exactly one of days, "
    "weeks (the last N calendar days or weeks up to E), unbounded (everything before E), toDate (from the start "
    "of the period holding S). Needs one time grain in rows.",
)
class WindowInput:
    days: Optional[int] = None
    weeks: Optional[int] = None
    unbounded: Optional[bool] = None
    to_date: Optional[ToDateGrain] = None  # type: ignore[valid-type]


_ALLOWED = "window takes exactly one of days: N, weeks: N, unbounded: true, toDate: WEEK|MONTH|QUARTER|YEAR"


def _plain(value: Any, enum: Any) -> str:
    """An enum argument as its value, whether it comes as a member, its value or its name."""
    value = getattr(value, "value", value)
    names = {member.name: member.value for member in enum}
    return names.get(value, value)


def _window(given: dict[str, Any]) -> Window:
    if len(given) != 1:
        raise InvalidRequest(f"{_ALLOWED} (got {', '.join(given) or 'none'})")
    [(name, value)] = given.items()
    if name in ("days", "weeks"):
        return Window(WindowKind.TRAILING, int(value), TimeGrain.DAY if name == "days" else TimeGrain.WEEK)
    if name == "unbounded":
        if value is not True:
            raise InvalidRequest(f"{_ALLOWED}; unbounded: false is no window (leave window out)")
        return Window(WindowKind.ALL)
    return Window(WindowKind.TO_DATE, unit=TimeGrain(_plain(value, ToDateGrain)))


def requested_window(window: Any, compare: Any) -> Window | None:
    """The window a metric field's arguments ask for (None without them); ``window`` is a ``WindowInput`` or the
    mapping a syntax tree gives."""
    if window is not None and compare is not None:
        raise InvalidRequest(
            "window and compare cannot be combined on one field; select the metric twice, with aliases"
        )
    if compare is not None:
        value = _plain(compare, Compare)
        return (
            Window(WindowKind.PREVIOUS)
            if value == "previous_period"
            else Window(WindowKind.SHIFTED, 1, TimeGrain(value))
        )
    if window is None:
        return None
    items = window.items() if isinstance(window, dict) else vars(window).items()
    return _window({"to_date" if name == "toDate" else name: value for name, value in items if value is not None})


def metric_field(name: str, python_type: type, graphql_name: str, description: str | None) -> StrawberryField:
    """A metric of a result row, plain or, with ``window`` or ``compare``, in its ad hoc time-relative form."""

    def resolve(root: Row, window: Any = None, compare: Any = None) -> Any:
        asked = requested_window(window, compare)
        return root.values.get(name if asked is None else adhoc_name(name, asked))

    resolve.__annotations__ = {
        "window": Annotated[
            Optional[WindowInput], strawberry.argument(description="This metric over a window of each time bucket.")
        ],
        "compare": Annotated[
            Optional[Compare],  # type: ignore[valid-type]
            strawberry.argument(description="This metric's value in an earlier bucket."),
        ],
        "return": Optional[python_type],
    }
    return strawberry.field(resolver=resolve, name=graphql_name, description=description)
