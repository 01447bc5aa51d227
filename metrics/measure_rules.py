"""The semantic rules over a measure: its fact and column exist and fit the aggregation, its filters fit their columns.

Split from ``validation`` for size; the rules there are run in the same pass.
"""

from __future__ import annotations

from collections.abc import Iterator

from metrics.errors import did_you_mean
from metrics.loader import Config, Finding
from metrics.model import Aggregation, ColumnRef, Condition, DataType, FilterOp, Measure, Metric


def _measures(metric: Metric) -> Iterator[tuple[Measure, tuple[str, ...]]]:
    path = ("metrics", metric.name)
    if metric.measure is not None:
        yield metric.measure, path
    for part, operand in (("numerator", metric.numerator), ("denominator", metric.denominator)):
        if isinstance(operand, Measure):
            yield operand, (*path, "ratio", part)


def check_measures(config: Config) -> Iterator[Finding]:
    for metric in config.metrics.values():
        for measure, path in _measures(metric):
            yield from _check_measure(config, metric.name, measure, path)


def _check_measure(config: Config, metric: str, measure: Measure, path: tuple[str, ...]) -> Iterator[Finding]:
    fact = config.facts.get(measure.fact)
    if fact is None and config.is_broken("facts", measure.fact):
        return
    if fact is None:
        yield (
            "unknown_fact",
            f"metric {metric!r} uses unknown fact {measure.fact!r}{did_you_mean(measure.fact, config.facts)}",
            (*path, "fact"),
        )
        return
    aggregation, column = measure.aggregation, measure.column
    broken = config.broken_columns(fact.name)
    if column in broken:
        column = None
    elif column is None and aggregation is not Aggregation.COUNT:
        yield (
            "missing_column",
            f"metric {metric!r}: aggregation {aggregation.value} needs a column",
            (*path, "aggregation"),
        )
    if column is not None and column not in fact.columns:
        hint = did_you_mean(column, fact.columns) or f" (declared columns: {', '.join(sorted(fact.columns))})"
        yield (
            "unknown_column",
            f"metric {metric!r}: fact {fact.name!r} has no column {column!r}{hint}",
            (*path, "column"),
        )
    elif column is not None:
        data_type = fact.columns[column]
        numeric = aggregation in (Aggregation.SUM, Aggregation.AVG, Aggregation.PERCENTILE)
        ordered = aggregation in (Aggregation.MIN, Aggregation.MAX)
        if (numeric and not data_type.is_numeric) or (ordered and data_type in (DataType.BOOLEAN, DataType.STRING)):
            yield (
                "type_mismatch",
                f"metric {metric!r}: cannot {aggregation.value} column {column!r} of type {data_type.value}",
                (*path, "column"),
            )
    if aggregation is Aggregation.PERCENTILE:
        if measure.percentile is None:
            yield (
                "missing_percentile",
                f"metric {metric!r}: a percentile aggregation needs `percentile: 0..1`",
                (*path, "aggregation"),
            )
        elif not 0 <= measure.percentile <= 1:
            yield (
                "percentile_range",
                f"metric {metric!r}: percentile {measure.percentile} is outside 0..1 (write 0.95, not 95)",
                (*path, "percentile"),
            )
    elif measure.percentile is not None:
        yield (
            "unexpected_percentile",
            f"metric {metric!r}: `percentile` only applies to aggregation percentile",
            (*path, "percentile"),
        )
    for condition in measure.filter:
        if condition.column not in broken:
            yield from _check_condition(
                metric, fact.name, fact.columns, broken, condition, (*path, "filter", condition.column)
            )
    filtered = {condition.column for condition in measure.filter}
    for column in _broken_filters(config, path):
        if column not in filtered | broken | set(fact.columns):
            yield _unknown_filter_column(metric, fact.name, fact.columns, column, (*path, "filter", column))


def _broken_filters(config: Config, path: tuple[str, ...]) -> list[str]:
    """Columns of filters left out for a broken operator or value: the column itself can still be unknown."""
    prefix = (*path, "filter")
    return sorted({str(b[len(prefix)]) for b in config.broken if b[: len(prefix)] == prefix and len(b) > len(prefix)})


def _unknown_filter_column(
    metric: str, fact: str, columns: dict[str, DataType], column: str, path: tuple[str, ...]
) -> Finding:
    return (
        "unknown_column",
        f"metric {metric!r}: filter on unknown column {column!r} of fact {fact!r}{did_you_mean(column, columns)}",
        path,
    )


def _check_condition(
    metric: str, fact: str, columns: dict[str, DataType], broken: set[str], condition: Condition, path: tuple[str, ...]
) -> Iterator[Finding]:
    if condition.column not in columns:
        yield _unknown_filter_column(metric, fact, columns, condition.column, path)
        return
    data_type, op, value = columns[condition.column], condition.op, condition.value
    path = (*path, op.value)
    if isinstance(value, ColumnRef):
        if value.column in broken:
            return
        if value.column not in columns:
            yield (
                "unknown_column",
                f"metric {metric!r}: filter compares with unknown column {value.column!r}"
                f"{did_you_mean(value.column, columns)}",
                path,
            )
            return
        if op in (FilterOp.IS_NULL, FilterOp.IN, FilterOp.NOT_IN):
            yield (
                "invalid_filter",
                f"metric {metric!r}: {op.value} cannot compare with a column; use eq, neq, gt, gte, lt, lte or like",
                path,
            )
            return
    elif op is FilterOp.IS_NULL:
        if not isinstance(value, bool):
            yield "invalid_filter", f"metric {metric!r}: is_null takes true or false", path
        return
    if op in (FilterOp.IN, FilterOp.NOT_IN) and not isinstance(value, tuple):
        yield "invalid_filter", f"metric {metric!r}: {op.value} takes a list", path
    elif op in (FilterOp.GT, FilterOp.GTE, FilterOp.LT, FilterOp.LTE) and not (
        data_type.is_numeric or data_type is DataType.TIMESTAMP
    ):
        yield (
            "invalid_filter",
            f"metric {metric!r}: {op.value} does not apply to {data_type.value} column {condition.column!r}",
            path,
        )
    elif op is FilterOp.LIKE and data_type is not DataType.STRING:
        yield "invalid_filter", f"metric {metric!r}: like only applies to string columns", path
    elif isinstance(value, ColumnRef):
        other = columns[value.column]
        if other is not data_type and not (other.is_numeric and data_type.is_numeric):
            yield (
                "type_mismatch",
                f"metric {metric!r}: {data_type.value} column {condition.column!r} "
                f"cannot be compared with {other.value} column {value.column!r}",
                path,
            )
    else:
        for item in value if isinstance(value, tuple) else (value,):
            if not data_type.accepts(item):
                yield (
                    "type_mismatch",
                    f"metric {metric!r}: filter value {item!r} "
                    f"does not fit {data_type.value} column {condition.column!r}",
                    path,
                )
