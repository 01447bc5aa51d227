"""Time-relative forms of registry metrics that a request defines itself (``verificationCount(window: {days: 7})``).

Exploration should not need a YAML edit: a request may ask for any plain metric over a window or compared with
an earlier bucket. Each becomes a ``Metric`` like a configured cumulative or offset one, named after its base
and window (``verification_count__trailing_7_day``: config names never hold ``__``, so it cannot clash), and
is compiled against the registry extended with it.
"""

from __future__ import annotations

from metrics.errors import InvalidRequest
from metrics.model import Metric, TimeGrain, Window, WindowKind
from metrics.registry import Registry

MAX_AMOUNT = 9999
WINDOW_UNITS = (TimeGrain.DAY, TimeGrain.WEEK)
TO_DATE_UNITS = (TimeGrain.WEEK, TimeGrain.MONTH, TimeGrain.QUARTER, TimeGrain.YEAR)
SHIFT_UNITS = (TimeGrain.DAY, TimeGrain.WEEK, TimeGrain.MONTH, TimeGrain.QUARTER, TimeGrain.YEAR)


def adhoc_name(base: str, window: Window) -> str:
    return f"{base}__{window.tag}"


def _check(window: Window) -> None:
    if window.kind in (WindowKind.TRAILING, WindowKind.SHIFTED) and not 1 <= window.amount <= MAX_AMOUNT:
        raise InvalidRequest(f"a window or offset of {window.amount} {window.unit}s: use 1 to {MAX_AMOUNT}")
    allowed = {WindowKind.TRAILING: WINDOW_UNITS, WindowKind.TO_DATE: TO_DATE_UNITS, WindowKind.SHIFTED: SHIFT_UNITS}
    units = allowed.get(window.kind)
    if units is not None and window.unit not in units:
        raise InvalidRequest(f"{window}: the unit must be one of {', '.join(u.value for u in units)}")


def adhoc_metric(registry: Registry, base: str, window: Window) -> Metric:
    """``base`` over ``window``; raises ``InvalidRequest`` for a window out of bounds or a base that is one already."""
    metric = registry.metric(base)
    _check(window)
    if registry.is_time_relative(base):
        raise InvalidRequest(
            f"{base!r} is time-relative already; window and compare apply to plain metrics (derive it in config)"
        )
    kind = "compared with" if window.kind in (WindowKind.SHIFTED, WindowKind.PREVIOUS) else "over"
    return Metric(
        adhoc_name(base, window),
        f"{metric.label}, {window}",
        f"{metric.label} {kind} {window} of each time bucket.",
        unit=metric.unit,
        format=metric.format,
        base=base,
        window=window,
    )
