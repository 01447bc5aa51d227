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

import re
from collections.abc import Callable, Iterator
from enum import Enum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, StringConstraints, Tag, model_validator
from pydantic import ValidationError as SchemaError
from pydantic_core import InitErrorDetails, PydanticCustomError

from metrics.errors import did_you_mean
from metrics.model import (
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
)

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
Path_ = tuple[str | int, ...]
Problem = tuple[str, str, Path_]
"""(code, message, path of the value in the file's data)."""

OWN_CODES = {
    "unknown_key",
    "unexpected_key",
    "missing_key",
    "invalid_value",
    "invalid_name",
    "metric_kind",
    "no_attributes",
}
IGNORABLE = {"unknown_key", "unexpected_key"}
"""Problems of a key that is simply left out: the object around it is still built and checked."""


def _problem(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, "{message}", {"message": message})


def _choice(enum: type[Enum], what: str) -> Callable[[Any], Any]:
    """A member of a closed vocabulary, or an ``invalid_value`` naming the closest one."""
    choices = [member.value for member in enum]

    def member(value: Any) -> Any:
        if value not in choices:
            hint = did_you_mean(str(value), choices) or f" (one of: {', '.join(choices)})"
            raise _problem("invalid_value", f"{what} {value!r} is not valid{hint}")
        return enum(value)

    return member


def _number(what: str) -> Callable[[Any], Any]:
    """A YAML number as written (95 stays 95 in messages); true and false are not numbers."""

    def number(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _problem("invalid_value", f"{what} must be a number, not {value!r}")
        return value

    return number


def _snake_case(name: Any) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise _problem("invalid_name", "the name must be snake_case (a-z, 0-9, _)")
    return name


Text = Annotated[str, StringConstraints(min_length=1)]
Percentile = Annotated[int | float, BeforeValidator(_number("percentile"))]
Name = Annotated[str, BeforeValidator(_snake_case)]
Type = Annotated[DataType, BeforeValidator(_choice(DataType, "type"))]
Operator = Annotated[FilterOp, BeforeValidator(_choice(FilterOp, "filter operator"))]
AggregationName = Annotated[Aggregation, BeforeValidator(_choice(Aggregation, "aggregation"))]
FormatName = Annotated[Format, BeforeValidator(_choice(Format, "format"))]


def _either(mapping: str, other: str) -> Discriminator:
    """A value written either as a mapping or as one plain value; the tags name the two forms in error paths."""
    return Discriminator(lambda value: mapping if isinstance(value, dict) else other)


class Spec(BaseModel):
    """A mapping with a fixed set of keys: unknown keys and rules over several keys come out with the fields' own."""

    model_config = ConfigDict(strict=True, frozen=True)

    @model_validator(mode="wrap")
    @classmethod
    def _whole_object(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        unknown = [
            InitErrorDetails(
                type=_problem("unknown_key", f"unknown key {key!r}{did_you_mean(key, cls.model_fields)}"),
                loc=(key,),
                input=value,
            )
            for key, value in data.items()
            if key not in cls.model_fields
        ]
        whole = [
            InitErrorDetails(type=_problem(code, message), loc=loc, input=data)
            for code, message, loc in cls.object_problems(data)
        ]
        if not unknown and not whole:
            return handler(data)
        fields: list[InitErrorDetails] = []
        try:
            handler({key: value for key, value in data.items() if key in cls.model_fields})
        except SchemaError as exc:
            fields = [_redo(error) for error in exc.errors()]
        raise SchemaError.from_exception_data(cls.__name__, [*unknown, *fields, *whole])

    @classmethod
    def object_problems(cls, data: dict[str, Any]) -> Iterator[tuple[str, str, Path_]]:
        """Problems no single key has (which of several keys is there); ``data`` is the raw mapping."""
        return iter(())


def _redo(error: Any) -> InitErrorDetails:
    """An error of a nested object, raised again beside this object's own."""
    kind = error["type"]
    if kind in OWN_CODES:
        kind = _problem(kind, error["ctx"]["message"])
    detail = InitErrorDetails(type=kind, loc=error["loc"], input=error["input"])
    if "ctx" in error and not isinstance(kind, PydanticCustomError):
        detail["ctx"] = error["ctx"]
    return detail


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
    _either("computed column", "stored column"),
]
Reach = Annotated[
    Annotated[BridgeSpec, Tag("bridge")] | Annotated[Text, Tag("key column")],
    _either("bridge", "key column"),
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
    _either("measure", "metric name"),
]


class RatioSpec(Spec):
    numerator: Operand
    denominator: Operand


class MetricSpec(FilterSpec):
    """A measure (``aggregation`` over a ``fact``), a ``ratio`` of two, or an ``expression`` over other metrics."""

    label: Text
    description: Text
    unit: Text | None = None
    format: FormatName | None = None
    fact: Text | None = None
    aggregation: AggregationName | None = None
    ratio: RatioSpec | None = None
    expression: Text | None = None

    _KINDS: ClassVar = ("aggregation", "ratio", "expression")
    _MEASURE_ONLY: ClassVar = ("fact", "column", "percentile", "filter")
    _KINDS_IN_WORDS: ClassVar = {"ratio": "to a ratio", "expression": "to an expression"}

    @classmethod
    def object_problems(cls, data: dict[str, Any]) -> Iterator[tuple[str, str, Path_]]:
        kinds = [kind for kind in cls._KINDS if kind in data]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            yield "metric_kind", f"needs exactly one of aggregation, ratio, expression (found: {found})", ()
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


class FileSpec(Spec):
    """One config file: any of the four sections, each a mapping of snake_case names to definitions."""

    dimensions: dict[Name, DimensionSpec] = {}
    facts: dict[Name, FactSpec] = {}
    metrics: dict[Name, MetricSpec] = {}
    extend_facts: dict[Name, FactBodySpec] = {}
    policies: list[Any] = []
    """Access policies: their shape and names are checked by ``metrics.policy``, against the whole registry."""
