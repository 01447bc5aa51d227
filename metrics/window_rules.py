"""The semantic rule over time-relative metrics: a window reads plain buckets, never another window.

Split from ``validation`` for size; the rules there are run in the same pass.
"""

from __future__ import annotations

from collections.abc import Iterator

from metrics.errors import did_you_mean
from metrics.expressions import names, parse
from metrics.loader import Config, Finding
from metrics.model import Metric


def _windowed(config: Config, name: str, seen: frozenset[str] = frozenset()) -> str | None:
    """The first time-relative metric ``name`` is or uses (None if none, or if a cycle, reported elsewhere)."""
    metric = config.metrics.get(name)
    if metric is None or name in seen:
        return None
    if metric.window is not None:
        return name
    used = [operand for operand in (metric.numerator, metric.denominator) if isinstance(operand, str)]
    if metric.expression is not None:
        try:
            used = names(parse(metric.expression))
        except ValueError:  # reported by check_references
            used = []
    return next((found for found in (_windowed(config, u, seen | {name}) for u in used) if found), None)


def check_windows(config: Config) -> Iterator[Finding]:
    """A cumulative or offset metric's base is a known, plain metric: windows of windows have no single meaning
    (is a week-ago 7-day count shifted before or after summing?); derive from both instead."""
    for metric in config.metrics.values():
        if metric.base is None:
            continue
        where = ("metrics", metric.name, metric.kind, "metric")
        if metric.base not in config.metrics:
            if not config.is_broken("metrics", metric.base):
                known = did_you_mean(metric.base, config.metrics)
                yield "unknown_metric", f"metric {metric.name!r} uses unknown metric {metric.base!r}{known}", where
            continue
        inner = _windowed(config, metric.base)
        if inner is not None:
            yield (
                "nested_window",
                f"metric {metric.name!r}: its base {metric.base!r} is time-relative ({inner!r} is "
                f"{_kind(config.metrics[inner])}); a time-relative metric's base must be a plain metric",
                where,
            )


def _kind(metric: Metric) -> str:
    return f"{metric.kind}, reading {metric.window}"
