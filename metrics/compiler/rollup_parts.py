"""What a rollup stores: its kept columns and the re-aggregatable parts of its measures.

Declared once here and read by the table contract (``rollup_tables``), the refresh and the routed query
(``rollup_scan``), so the three always agree on names and on how each part is computed and re-aggregated:
counts and sums add up, minima and maxima take the least and greatest, an average is its sum over its count.
Sums of integers are BIGINT, as the base query casts them; sums of floats (and every average's sum) are the exact
DECIMAL the base query sums in, converted to double the same way, so a routed answer equals the base one to the
last bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement

from metrics.compiler.fact_query import label
from metrics.compiler.functions import EXACT_DECIMAL, decimal_sum, decimal_to_double, divide
from metrics.model import Aggregation, DataType, Measure, Rollup
from metrics.registry import Registry

BUCKET = "bucket"
VALID_FROM = "__valid_from"
PARTS = {
    Aggregation.COUNT: ("count",),
    Aggregation.SUM: ("sum",),
    Aggregation.AVG: ("sum", "count"),
    Aggregation.MIN: ("min",),
    Aggregation.MAX: ("max",),
}
"""The parts each re-aggregatable aggregation is stored as; count distinct and percentile have none."""
SQL_TYPES: dict[DataType, Any] = {
    DataType.STRING: sa.Text(),
    DataType.INTEGER: sa.BigInteger(),
    DataType.FLOAT: sa.Double(),
    DataType.BOOLEAN: sa.Boolean(),
    DataType.TIMESTAMP: sa.DateTime(),
}


@dataclass(frozen=True)
class Kept:
    """A dimension a rollup keeps: the fact's column, and for a type-2 dimension the version's valid_from."""

    dimension: str
    column: str
    type: Any
    valid_from: str | None

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,) if self.valid_from is None else (self.column, self.valid_from)


def kept(rollup: Rollup, registry: Registry) -> tuple[Kept, ...]:
    fact = registry.facts[rollup.fact]
    found = []
    for name in rollup.dimensions:
        dimension, column = registry.dimensions[name], fact.dimensions[name].column
        assert column is not None  # validation refuses bridged dimensions
        if dimension.is_table:
            history = dimension.history is not None
            found.append(Kept(name, column, sa.Integer(), f"{column}{VALID_FROM}" if history else None))
        else:
            found.append(Kept(name, column, SQL_TYPES[fact.columns.get(column, dimension.type)], None))
    return tuple(found)


def stored_measures(rollup: Rollup, registry: Registry) -> dict[str, Measure]:
    """Each distinct measure of the rollup's metrics once, by its first name, in name order."""
    found: dict[Measure, str] = {}
    for metric in rollup.metrics:
        for name, measure in registry.measures(metric).items():
            found.setdefault(measure, name)
    return {name: measure for measure, name in sorted(found.items(), key=lambda item: item[1])}


def part_name(measure_name: str, part: str) -> str:
    return f"{label(measure_name)}__{part}"


def _is_float_sum(measure: Measure, registry: Registry) -> bool:
    column_type = registry.facts[measure.fact].columns.get(measure.column or "")
    return measure.aggregation is Aggregation.AVG or column_type is not DataType.INTEGER


def part_types(measure: Measure, registry: Registry) -> dict[str, Any]:
    column_type = registry.facts[measure.fact].columns.get(measure.column or "", DataType.INTEGER)
    types = {"count": sa.BigInteger(), "min": SQL_TYPES[column_type], "max": SQL_TYPES[column_type]}
    types["sum"] = EXACT_DECIMAL if _is_float_sum(measure, registry) else sa.BigInteger()
    return {part: types[part] for part in PARTS[measure.aggregation]}


def row_parts(
    measure: Measure, registry: Registry, column: ColumnElement[Any] | None, condition: ColumnElement[bool] | None
) -> dict[str, ColumnElement[Any]]:
    """The parts of a measure aggregated from fact rows (``column`` its value, ``condition`` its filter)."""

    def filtered(value: Any) -> ColumnElement[Any]:
        return value if condition is None else value.filter(condition)

    values: dict[str, ColumnElement[Any]] = {}
    for part in PARTS[measure.aggregation]:
        if part == "count":
            values[part] = filtered(sa.func.count(column) if column is not None else sa.func.count())
        elif part == "sum" and _is_float_sum(measure, registry):
            assert column is not None
            values[part] = decimal_sum(column, condition)
        elif part == "sum":
            values[part] = sa.cast(filtered(sa.func.sum(column)), sa.BigInteger())
        else:
            values[part] = filtered(getattr(sa.func, part)(column))
    return values


def reaggregate(measure: Measure, registry: Registry, parts: dict[str, ColumnElement[Any]]) -> ColumnElement[Any]:
    """The measure's value from its stored parts, computed as the base query computes it from rows."""
    aggregation = measure.aggregation
    if aggregation is Aggregation.COUNT:  # 0, as count() gives, where there are no rows at all
        return sa.func.coalesce(sa.cast(sa.func.sum(parts["count"]), sa.BigInteger()), 0)
    if aggregation in (Aggregation.MIN, Aggregation.MAX):
        part = aggregation.value
        return getattr(sa.func, part)(parts[part])
    if not _is_float_sum(measure, registry):
        return sa.cast(sa.func.sum(parts["sum"]), sa.BigInteger())
    total = decimal_to_double(sa.func.sum(parts["sum"]))
    if aggregation is Aggregation.AVG:
        return divide(total, sa.cast(sa.func.sum(parts["count"]), sa.BigInteger()))
    return total
