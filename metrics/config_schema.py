"""The shapes of a config file, as pydantic models: which keys each object has and what kind of value each holds.

Shapes and closed vocabularies (aggregations, types, formats, filter
operators) live here; rules that need the whole registry (does that fact
exist, can that column be summed) live in ``validation``. A file is validated
in one call, so every structural problem of it comes out at once; the parts
that hold problems are then left out, one by one, so the rest can still be
built and checked (see ``check_file``). Each model builds the frozen value of
``metrics.model`` it describes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Tag

from metrics.errors import did_you_mean
from metrics.model import (
    ROLLUP_GRAINS,
    Aggregation,
    Attribute,
    Bridge,
    ColumnRef,
    Condition,
    DataType,
    Dimension,
    DimensionPath,
    Fact,
    FilterOp,
    Format,
    History,
    Measure,
    Metric,
    Rollup,
    TimeGrain,
)
from metrics.schema_base import IGNORABLE as IGNORABLE
from metrics.schema_base import NAME as NAME
from metrics.schema_base import OWN_CODES as OWN_CODES
from metrics.schema_base import Name, Path_, Spec, Text, choice, either, number, problem
from metrics.schema_base import Problem as Problem
from metrics.schema_base import SchemaError as SchemaError
from metrics.window_schema import CumulativeSpec, FillValue, OffsetSpec

Percentile = Annotated[int | float, BeforeValidator(number("percentile"))]
Type = Annotated[DataType, BeforeValidator(choice(DataType, "type"))]
Operator = Annotated[FilterOp, BeforeValidator(choice(FilterOp, "filter operator"))]
AggregationName = Annotated[Aggregation, BeforeValidator(choice(Aggregation, "aggregation"))]
FormatName = Annotated[Format, BeforeValidator(choice(Format, "format"))]


def _rollup_grain(value: Any) -> TimeGrain:
    grains = [grain.value for grain in ROLLUP_GRAINS]
    if value not in grains:
        hint = did_you_mean(str(value), grains) or f" (one of: {', '.join(grains)})"
        raise problem("invalid_value", f"rollup grain {value!r} is not valid{hint}; rollups keep UTC buckets")
    return TimeGrain(value)


RollupGrain = Annotated[TimeGrain, BeforeValidator(_rollup_grain)]


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


class ComputedColumnSpec(Spec):
    type: Type
    expression: Text


class BridgeSpec(Spec):
    bridge: Text
    key: Text
    column: Text


Column = Annotated[
    Annotated[ComputedColumnSpec, Tag("computed column")] | Annotated[Type, Tag("stored column")],
    either("computed column", "stored column"),
]
Reach = Annotated[
    Annotated[BridgeSpec, Tag("bridge")] | Annotated[Text, Tag("key column")],
    either("bridge", "key column"),
]


class FactBodySpec(Spec):
    """What a fact declares and an extension adds: columns (stored or computed) and paths to dimensions."""

    columns: dict[str, Column] = {}
    dimensions: dict[str, Reach] = {}

    def column_types(self) -> dict[str, DataType]:
        return {
            name: column.type if isinstance(column, ComputedColumnSpec) else column
            for name, column in self.columns.items()
        }

    def expressions(self) -> dict[str, str]:
        return {
            name: column.expression for name, column in self.columns.items() if isinstance(column, ComputedColumnSpec)
        }

    def paths(self) -> dict[str, DimensionPath]:
        return {
            name: DimensionPath(name, column=path)
            if isinstance(path, str)
            else DimensionPath(name, bridge=Bridge(path.bridge, path.key, path.column))
            for name, path in self.dimensions.items()
        }


class FactSpec(FactBodySpec):
    label: Text | None = None
    description: Text | None = None
    table: Text
    time: Text

    def build(self, name: str) -> Fact:
        return Fact(
            name,
            self.label or _label(name),
            self.table,
            self.time,
            self.description or "",
            self.column_types(),
            self.paths(),
            self.expressions(),
        )


class HistorySpec(Spec):
    valid_from: Text
    valid_to: Text


class AttributeSpec(Spec):
    column: Text
    type: Type = DataType.STRING
    label: Text | None = None
    description: Text | None = None


class DimensionSpec(Spec):
    """A table dimension (``table``: attributes behind a key) or a value dimension (``type``: one column)."""

    label: Text | None = None
    description: Text | None = None
    table: Text | None = None
    key: Text | None = None
    history: HistorySpec | None = None
    attributes: dict[Name, AttributeSpec] = {}
    type: Type | None = None
    sensitive: bool = False
    """Identifies people (ids, names, free text): hidden from the research role."""

    _TABLE_ONLY: ClassVar = ("key", "history", "attributes")

    @classmethod
    def object_problems(cls, data: dict[str, Any]) -> Iterator[tuple[str, str, Path_]]:
        if "table" not in data:
            for key in cls._TABLE_ONLY:
                if key in data:
                    yield "unexpected_key", f"{key!r} applies only to a table dimension (one with a `table`)", (key,)
            return
        if "type" in data:
            yield "unexpected_key", "a table dimension has no 'type': each attribute has its own", ("type",)
        if "key" not in data:
            yield "missing_key", "missing required key 'key' (a table dimension's key column)", ()
        if not data.get("attributes"):
            yield "no_attributes", "a table dimension declares at least one attribute", ()

    def build(self, name: str) -> Dimension:
        label, description = self.label or _label(name), self.description or ""
        if self.table is None:
            return Dimension(name, label, description, type=self.type or DataType.STRING, sensitive=self.sensitive)
        attributes = tuple(
            Attribute(attribute, spec.column, spec.type, spec.label or _label(attribute), spec.description or "")
            for attribute, spec in self.attributes.items()
        )
        history = History(self.history.valid_from, self.history.valid_to) if self.history else None
        return Dimension(name, label, description, self.table, self.key, history, attributes, sensitive=self.sensitive)


def _filter_value(value: Any) -> object:
    if isinstance(value, dict) and set(value) == {"column"}:
        return ColumnRef(str(value["column"]))
    return tuple(value) if isinstance(value, list) else value


class FilterSpec(Spec):
    """Shared by a metric and a ratio's operand: the keys that narrow and shape one aggregation."""

    column: Text | None = None
    percentile: Percentile | None = None
    filter: dict[str, dict[Operator, Any]] = {}

    def measure(self, fact: str, aggregation: Aggregation) -> Measure:
        conditions = tuple(
            Condition(column, op, _filter_value(value))
            for column, operators in self.filter.items()
            for op, value in operators.items()
        )
        return Measure(fact, aggregation, self.column, self.percentile, conditions)


class MeasureSpec(FilterSpec):
    fact: Text
    aggregation: AggregationName


Operand = Annotated[
    Annotated[MeasureSpec, Tag("measure")] | Annotated[Text, Tag("metric name")],
    either("measure", "metric name"),
]


class RatioSpec(Spec):
    numerator: Operand
    denominator: Operand


class MetricSpec(FilterSpec):
    """A measure (``aggregation`` over a ``fact``), a ``ratio`` of two, an ``expression`` over other metrics,
    or a time-relative metric (``cumulative``, ``offset``) over another metric."""

    label: Text
    description: Text
    unit: Text | None = None
    format: FormatName | None = None
    fact: Text | None = None
    aggregation: AggregationName | None = None
    ratio: RatioSpec | None = None
    expression: Text | None = None
    cumulative: CumulativeSpec | None = None
    offset: OffsetSpec | None = None
    fill: FillValue | None = None

    _KINDS: ClassVar = ("aggregation", "ratio", "expression", "cumulative", "offset")
    _MEASURE_ONLY: ClassVar = ("fact", "column", "percentile", "filter")
    _KINDS_IN_WORDS: ClassVar = {
        "ratio": "to a ratio",
        "expression": "to an expression",
        "cumulative": "to a cumulative metric",
        "offset": "to an offset metric",
    }

    @classmethod
    def object_problems(cls, data: dict[str, Any]) -> Iterator[tuple[str, str, Path_]]:
        kinds = [kind for kind in cls._KINDS if kind in data]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            yield "metric_kind", f"needs exactly one of {', '.join(cls._KINDS)} (found: {found})", ()
        elif kinds == ["aggregation"] and "fact" not in data:
            yield "missing_key", "missing required key 'fact' (the fact to aggregate)", ()
        elif kinds != ["aggregation"]:
            for key in cls._MEASURE_ONLY:
                if key in data:
                    yield (
                        "unexpected_key",
                        f"{key!r} applies only to an aggregation, not {cls._KINDS_IN_WORDS[kinds[0]]}",
                        (key,),
                    )

    def build(self, name: str, file: str, line: int) -> Metric:
        common = {"name": name, "label": self.label, "description": self.description, "unit": self.unit}
        common |= {"format": self.format.value if self.format else None, "file": file, "line": line}
        common |= {"fill": None if self.fill is None else float(self.fill)}
        if self.cumulative is not None:
            return Metric(**common, base=self.cumulative.metric, window=self.cumulative.window_of())
        if self.offset is not None:
            return Metric(**common, base=self.offset.metric, window=self.offset.by)
        if self.ratio is not None:
            numerator, denominator = (
                operand if isinstance(operand, str) else operand.measure(operand.fact, operand.aggregation)
                for operand in (self.ratio.numerator, self.ratio.denominator)
            )
            return Metric(**common, numerator=numerator, denominator=denominator)
        if self.expression is not None:
            return Metric(**common, expression=self.expression)
        assert self.fact is not None and self.aggregation is not None  # object_problems holds it
        return Metric(**common, measure=self.measure(self.fact, self.aggregation))


class RollupSpec(Spec):
    """A pre-aggregated table of one fact (``metrics.model.Rollup``)."""

    fact: Text
    dimensions: list[Text] = []
    grain: RollupGrain
    metrics: list[Text]

    def build(self, name: str, file: str, line: int) -> Rollup:
        return Rollup(name, self.fact, tuple(self.dimensions), self.grain, tuple(self.metrics), file, line)


class FileSpec(Spec):
    """One config file: any of the five sections, each a mapping of snake_case names to definitions."""

    dimensions: dict[Name, DimensionSpec] = {}
    facts: dict[Name, FactSpec] = {}
    metrics: dict[Name, MetricSpec] = {}
    extend_facts: dict[Name, FactBodySpec] = {}
    rollups: dict[Name, RollupSpec] = {}
    policies: list[Any] = []
    """Access policies: their shape and names are checked by ``metrics.policy``, against the whole registry."""
