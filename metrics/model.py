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


class WindowKind(str, Enum):
    """Which event times the time bucket [S, E) of a time-relative metric reads (see ``Window``)."""

    BUCKET = "bucket"
    TRAILING = "trailing"
    TO_DATE = "to_date"
    ALL = "all"
    SHIFTED = "shifted"
    PREVIOUS = "previous"


@dataclass(frozen=True)
class Window:
    """The input rows of one output time bucket [S, E), in calendar terms of the request's time zone.

    - ``BUCKET``: [S, E) itself, whole even where the requested range cuts it;
    - ``TRAILING``: [E - amount units, E) (``7 days``, ``4 weeks``);
    - ``TO_DATE``: from the start of the ``unit`` period holding S up to E (month to date);
    - ``ALL``: everything before E (a running total);
    - ``SHIFTED``: the bucket of the same grain that starts ``amount units`` before S;
    - ``PREVIOUS``: the bucket before [S, E) at the same grain.
    """

    kind: WindowKind
    amount: int = 0
    unit: TimeGrain | None = None

    def __str__(self) -> str:
        unit = self.unit.value if self.unit else ""
        return {
            WindowKind.BUCKET: "the bucket",
            WindowKind.TRAILING: f"the last {self.amount} {unit}(s)",
            WindowKind.TO_DATE: f"{unit} to date",
            WindowKind.ALL: "all time",
            WindowKind.SHIFTED: f"{self.amount} {unit}(s) before",
            WindowKind.PREVIOUS: "the previous period",
        }[self.kind]

    @property
    def tag(self) -> str:
        """A stable, SQL-safe name part, unique per window: ``trailing_7_day``."""
        parts = [
            self.kind.value,
            *([str(self.amount)] if self.amount else []),
            *([self.unit.value] if self.unit else []),
        ]
        return "_".join(parts)


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
    base: str | None = None
    """The metric a time-relative metric (``cumulative``, ``offset``) computes over its ``window``."""
    window: Window | None = None
    fill: float | None = None
    """The value of a time bucket without rows (``fill: zero`` is 0); every bucket of the range is then returned."""
    file: str = ""
    line: int = 0

    @property
    def kind(self) -> str:
        if self.measure is not None:
            return self.measure.aggregation.value
        if self.window is not None:
            return "offset" if self.window.kind in (WindowKind.SHIFTED, WindowKind.PREVIOUS) else "cumulative"
        return "ratio" if self.expression is None else "derived"


ROLLUP_GRAINS = (TimeGrain.MINUTE, TimeGrain.HOUR, TimeGrain.DAY)
"""The buckets a rollup may keep, in UTC."""


@dataclass(frozen=True)
class Rollup:
    """A pre-aggregated table of one fact: its rows grouped by UTC time bucket and the kept dimensions.

    A table dimension keeps the fact's member key (and, type 2, the valid_from of the version valid at the event
    time), so any attribute of that member can be joined back exactly; a value dimension keeps its column. Each
    measure of the listed metrics is stored as re-aggregatable parts (count, sum, min, max).
    """

    name: str
    fact: str
    dimensions: tuple[str, ...]
    grain: TimeGrain
    metrics: tuple[str, ...]
    file: str = ""
    line: int = 0
