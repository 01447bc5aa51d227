"""The shapes of time-relative metrics: ``cumulative`` (a window or a grain to date) and ``offset`` over a base
metric, and a metric's ``fill``; each builds the ``Window`` of ``metrics.model`` it describes."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from pydantic import BeforeValidator

from metrics.errors import did_you_mean
from metrics.model import TimeGrain, Window, WindowKind
from metrics.schema_base import Path_, Spec, Text, number, problem

_PERIOD = re.compile(r"^([1-9][0-9]{0,3}) (day|week|month|quarter|year)s?$")


def _period(
    what: str, kind: WindowKind, units: tuple[TimeGrain, ...], special: dict[str, WindowKind]
) -> Callable[[Any], Any]:
    """``7 days``, ``1 year`` or a special word, as a ``Window``; an ``invalid_value`` says what is allowed."""
    allowed = ", ".join([*special, *(f"N {unit.value}s" for unit in units)])

    def window(value: Any) -> Any:
        if isinstance(value, str) and value in special:
            return Window(special[value])
        match = _PERIOD.match(value) if isinstance(value, str) else None
        if match is None or TimeGrain(match[2]) not in units:
            hint = did_you_mean(str(value), special) or f" (use {allowed}, N from 1 to 9999)"
            raise problem("invalid_value", f"{what} {value!r} is not valid{hint}")
        return Window(kind, int(match[1]), TimeGrain(match[2]))

    return window


_TO_DATE = ("week", "month", "quarter", "year")


def _to_date(value: Any) -> Any:
    """The period a to-date total restarts at; weeks are ISO weeks."""
    if value not in _TO_DATE:
        hint = did_you_mean(str(value), _TO_DATE) or f" (one of: {', '.join(_TO_DATE)})"
        raise problem("invalid_value", f"grain_to_date {value!r} is not valid{hint}")
    return TimeGrain(value)


def _fill(value: Any) -> Any:
    if value == "zero":
        return 0
    return number("fill")(value)


TrailingWindow = Annotated[
    Window,
    BeforeValidator(
        _period("window", WindowKind.TRAILING, (TimeGrain.DAY, TimeGrain.WEEK), {"unbounded": WindowKind.ALL})
    ),
]
OffsetWindow = Annotated[
    Window,
    BeforeValidator(
        _period(
            "by",
            WindowKind.SHIFTED,
            (TimeGrain.DAY, TimeGrain.WEEK, TimeGrain.MONTH, TimeGrain.QUARTER, TimeGrain.YEAR),
            {"previous_period": WindowKind.PREVIOUS},
        )
    ),
]
ToDateGrain = Annotated[TimeGrain, BeforeValidator(_to_date)]
FillValue = Annotated[int | float, BeforeValidator(_fill)]


class CumulativeSpec(Spec):
    """A metric over a trailing ``window`` (``7 days``, ``unbounded``) or from the start of a ``grain_to_date``."""

    metric: Text
    window: TrailingWindow | None = None
    grain_to_date: ToDateGrain | None = None

    @classmethod
    def object_problems(cls, data: dict[str, Any]) -> Iterator[tuple[str, str, Path_]]:
        if ("window" in data) == ("grain_to_date" in data):
            yield "metric_kind", "a cumulative metric needs exactly one of window, grain_to_date", ()

    def window_of(self) -> Window:
        if self.grain_to_date is not None:
            return Window(WindowKind.TO_DATE, unit=self.grain_to_date)
        assert self.window is not None  # object_problems holds it
        return self.window


class OffsetSpec(Spec):
    """A metric's value in an earlier bucket: ``by: 1 year`` (calendar) or ``by: previous_period``."""

    metric: Text
    by: OffsetWindow
