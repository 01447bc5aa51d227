"""The semantic rules over a rollup: its fact, the dimensions it keeps and the metrics it serves.

A rollup stores each measure of its metrics as parts that re-aggregate exactly (count, sum, min, max; an average
as sum and count). Count distinct and percentiles have no such parts: a rollup listing them is refused, and
requests for them read the base fact. Split from ``validation`` for size; run in the same pass.
"""

from __future__ import annotations

from collections.abc import Iterator

from metrics.errors import did_you_mean
from metrics.expressions import names, parse
from metrics.loader import Config, Finding
from metrics.model import Aggregation, Measure, Metric, Rollup

DEFINITIONS = "definitions"
"""Rollup tables are named ``rollup_<name>``; ``rollup_definitions`` records what each one holds."""
NOT_ADDITIVE = {Aggregation.COUNT_DISTINCT: "a count distinct", Aggregation.PERCENTILE: "a percentile"}


def metric_measures(config: Config, name: str, seen: frozenset[str] = frozenset()) -> Iterator[Measure | Metric]:
    """The measures a metric is computed from; a time-relative metric met on the way is yielded itself."""
    metric = config.metrics.get(name)
    if metric is None or name in seen:
        return  # unknown names and cycles are reported by their own rules
    if metric.window is not None:
        yield metric
        return
    if metric.measure is not None:
        yield metric.measure
    for operand in (metric.numerator, metric.denominator):
        if isinstance(operand, Measure):
            yield operand
    used = [operand for operand in (metric.numerator, metric.denominator) if isinstance(operand, str)]
    if metric.expression is not None:
        try:
            used = names(parse(metric.expression))
        except ValueError:  # reported by check_references
            used = []
    for other in used:
        yield from metric_measures(config, other, seen | {name})


def check_rollups(config: Config) -> Iterator[Finding]:
    for rollup in config.rollups.values():
        path = ("rollups", rollup.name)
        if rollup.name == DEFINITIONS:
            yield "reserved_name", f"rollup name {DEFINITIONS!r} is reserved for the table of rollup definitions", path
        if not rollup.metrics:
            yield "missing_key", f"rollup {rollup.name!r} serves no metric; list at least one", (*path, "metrics")
        if rollup.fact not in config.facts:
            if not config.is_broken("facts", rollup.fact):
                hint = did_you_mean(rollup.fact, config.facts)
                yield (
                    "unknown_fact",
                    f"rollup {rollup.name!r} names unknown fact {rollup.fact!r}{hint}",
                    (*path, "fact"),
                )
            continue
        yield from _check_dimensions(config, rollup)
        yield from _check_metrics(config, rollup)


def _check_dimensions(config: Config, rollup: Rollup) -> Iterator[Finding]:
    fact = config.facts[rollup.fact]
    for index, name in enumerate(rollup.dimensions):
        where = ("rollups", rollup.name, "dimensions", index)
        path = fact.dimensions.get(name)
        if name in rollup.dimensions[:index]:
            yield "duplicate_name", f"rollup {rollup.name!r} keeps dimension {name!r} twice", where
        elif path is None:
            hint = did_you_mean(name, fact.dimensions) or f" (its dimensions: {', '.join(sorted(fact.dimensions))})"
            yield (
                "unknown_dimension",
                f"rollup {rollup.name!r}: fact {fact.name!r} has no dimension {name!r}{hint}",
                where,
            )
        elif path.bridge is not None:
            yield (
                "invalid_dimension",
                f"rollup {rollup.name!r} cannot keep dimension {name!r}: it is reached through a bridge, where a "
                "fact row counts once under each member; requests sliced by it read the base fact",
                where,
            )


def _check_metrics(config: Config, rollup: Rollup) -> Iterator[Finding]:
    for index, name in enumerate(rollup.metrics):
        where = ("rollups", rollup.name, "metrics", index)
        if name not in config.metrics:
            if not config.is_broken("metrics", name):
                hint = did_you_mean(name, config.metrics)
                yield "unknown_metric", f"rollup {rollup.name!r} serves unknown metric {name!r}{hint}", where
            continue
        for found in metric_measures(config, name):
            if isinstance(found, Metric):
                yield (
                    "invalid_metric",
                    f"rollup {rollup.name!r}: metric {name!r} is time-relative (it reads windows of {found.base!r}); "
                    "list the metric it is computed from",
                    where,
                )
            elif found.fact != rollup.fact:
                yield (
                    "invalid_metric",
                    f"rollup {rollup.name!r} of fact {rollup.fact!r} cannot serve metric {name!r}: "
                    f"it reads fact {found.fact!r}",
                    where,
                )
            elif found.aggregation in NOT_ADDITIVE:
                yield (
                    "not_additive",
                    f"rollup {rollup.name!r} cannot serve metric {name!r}: it is {NOT_ADDITIVE[found.aggregation]}, "
                    "which cannot be re-aggregated from stored parts (requests for it read the base fact)",
                    where,
                )
            else:
                continue
            break
