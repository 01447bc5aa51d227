"""The semantic model: what the YAML config declares, as frozen values.

Nothing here knows SQL or GraphQL; the compiler and the API read these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

# Names the compiled SQL uses itself; validation keeps config names from clashing with them.
ROW_COUNT = "total_count"
"""The label of the compiled query's row-count column."""
SPINE = "dimension_rows"
"""The name of the compiled query's CTE of dimension rows (drill-across)."""
MATCHING = "matching"
"""The alias of a fact table inside a bridged filter's semi-join."""


class DataType(str, Enum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"

    @property
    def is_numeric(self) -> bool:
        return self in (DataType.INTEGER, DataType.FLOAT)

    def accepts(self, value: object) -> bool:
        """Whether a config or request value can be compared with values of this type (no coercion)."""
        if self is DataType.BOOLEAN:
            return isinstance(value, bool)
        if self is DataType.INTEGER:
            return isinstance(value, int) and not isinstance(value, bool)
        if self is DataType.FLOAT:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if self is DataType.TIMESTAMP:
            return isinstance(value, datetime)
        return isinstance(value, str)


class Format(str, Enum):
    """How a client should show a metric's value; a closed set so every client can implement all of it."""

    INTEGER = "integer"
    NUMBER = "number"
    PERCENT = "percent"
    CURRENCY = "currency"
    DURATION = "duration"
    DATETIME = "datetime"


class TimeGrain(str, Enum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class Aggregation(str, Enum):
    COUNT = "count"
    COUNT_DISTINCT = "count_distinct"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    PERCENTILE = "percentile"


class FilterOp(str, Enum):
    EQ = "eq"
    NEQ = "neq"
    IN = "in"
    NOT_IN = "not_in"
    IS_NULL = "is_null"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    LIKE = "like"


@dataclass(frozen=True)
class ColumnRef:
    """A comparison against another column of the same row (``{column: sla_seconds}``)."""

    column: str


@dataclass(frozen=True)
class Condition:
    column: str
    op: FilterOp
    value: object


@dataclass(frozen=True)
class Attribute:
    name: str
    column: str
    type: DataType
    label: str
    description: str = ""


@dataclass(frozen=True)
class History:
    """Type-2 validity columns: a fact joins the version valid at its event time."""

    valid_from: str
    valid_to: str


@dataclass(frozen=True)
class Dimension:
    """A table dimension (``table`` set: attributes behind a key) or a value dimension (one column)."""

    name: str
    label: str
    description: str = ""
    table: str | None = None
    key: str | None = None
    history: History | None = None
    attributes: tuple[Attribute, ...] = ()
    type: DataType = DataType.STRING
    sensitive: bool = False
    """Identifies people (ids, names, free text): never shown to the research role."""

    @property
    def is_table(self) -> bool:
        return self.table is not None

    def attribute(self, name: str) -> Attribute | None:
        return next((attribute for attribute in self.attributes if attribute.name == name), None)


@dataclass(frozen=True)
class Bridge:
    """A many-to-many path: ``table`` holds one row per (fact row, member), joined on ``key``."""

    table: str
    key: str
    column: str


@dataclass(frozen=True)
class DimensionPath:
    """How a fact reaches a dimension: its key column, its own column, or a bridge."""

    dimension: str
    column: str | None = None
    bridge: Bridge | None = None


@dataclass(frozen=True)
class Fact:
    name: str
    label: str
    table: str
    time: str
    description: str = ""
    columns: dict[str, DataType] = field(default_factory=dict)
    """Every column metrics and filters may use, physical or computed, with its type."""
    dimensions: dict[str, DimensionPath] = field(default_factory=dict)
    expressions: dict[str, str] = field(default_factory=dict)
    """The computed columns: each one's expression over the fact's other columns, compiled to SQL."""

    def __hash__(self) -> int:
        return hash(self.name)


@dataclass(frozen=True)
class Measure:
    """One aggregation over a fact's rows, optionally of a subset of them."""

    fact: str
    aggregation: Aggregation
    column: str | None = None
    percentile: float | None = None
    filter: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Metric:
    """A named business number: a measure, a ratio of two, or an expression over other metrics."""

    name: str
    label: str
    description: str = ""
    unit: str | None = None
    format: str | None = None
    measure: Measure | None = None
    numerator: str | Measure | None = None
    denominator: str | Measure | None = None
    expression: str | None = None
    file: str = ""
    line: int = 0

    @property
    def kind(self) -> str:
        if self.measure is not None:
            return self.measure.aggregation.value
        return "ratio" if self.expression is None else "derived"
