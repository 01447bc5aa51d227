"""The logical plan: per-fact aggregates, then metric expressions over their results.

Small frozen nodes that print as readable text (``str(plan)``), so a plan can
be inspected and tested without SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from metrics.compiler.request import DimensionRef, Filter, MetricCondition, OrderBy
from metrics.compiler.window_plan import WindowAggregate
from metrics.model import DataType, Measure


@dataclass(frozen=True)
class Leaf:
    """An aggregated measure, read from its fact's aggregate."""

    measure: str
    fact: str
    is_count: bool

    def __str__(self) -> str:
        return f"{self.fact}.{self.measure}"


@dataclass(frozen=True)
class Number:
    value: float

    def __str__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class Arithmetic:
    """``left op right``; division yields null where the divisor is 0 or null."""

    op: str
    left: Expression
    right: Expression

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


@dataclass(frozen=True)
class Negate:
    operand: Expression

    def __str__(self) -> str:
        return f"-{self.operand}"


Expression = Leaf | Number | Arithmetic | Negate


@dataclass(frozen=True)
class Scan:
    """Where a fact aggregate reads its rows: the fact table, or a rollup that gives exactly the same answer.

    A rollup is read for the event times [low, high) (None: unbounded); the fact table for the rest of the
    request's range (its ragged ends), and the two are combined before aggregating. Without a rollup,
    ``reason`` is the first reason none could be used.
    """

    rollup: str | None = None
    reason: str = "rollups were not considered"
    low: datetime | None = None
    high: datetime | None = None
    ragged: tuple[tuple[datetime | None, datetime | None], ...] = ()
    """The ranges [from, to) read from the fact table beside the rollup."""

    def __str__(self) -> str:
        if self.rollup is None:
            return f"scan the fact table ({self.reason})"
        text = f"scan rollup {self.rollup}"
        if self.low is not None or self.high is not None:
            text += f" for [{self.low}, {self.high})"
        return text + "".join(f" + the fact table for [{start}, {end})" for start, end in self.ragged)


@dataclass(frozen=True)
class FactAggregate:
    """One fact's rows, filtered, grouped by the requested dimension attributes, with its measures."""

    fact: str
    measures: tuple[tuple[str, Measure], ...]
    scan: Scan = Scan()

    def __str__(self) -> str:
        listed = ", ".join(name for name, _ in self.measures)
        return f"aggregate {self.fact}: {listed}\n    {self.scan}"


@dataclass(frozen=True)
class MetricOutput:
    name: str
    type: DataType
    expression: Expression
    fill: float | None = None
    """The value where the expression is null in a gap-filled bucket (``fill`` of the metric)."""


@dataclass(frozen=True)
class QueryPlan:
    aggregates: tuple[FactAggregate, ...]
    dimensions: tuple[DimensionRef, ...]
    dimension_types: tuple[DataType, ...]
    outputs: tuple[MetricOutput, ...]
    where: Filter | None
    start: datetime | None
    end: datetime | None
    having: tuple[MetricCondition, ...]
    order_by: tuple[OrderBy, ...]
    limit: int | None
    offset: int
    timezone: str
    total_count: bool
    windows: tuple[WindowAggregate, ...] = ()

    def __str__(self) -> str:
        lines = [f"by [{', '.join(ref.key for ref in self.dimensions)}] in {self.timezone}"]
        if self.start or self.end:
            lines.append(f"time in [{self.start}, {self.end})")
        if self.where is not None:
            lines.append(f"where {self.where}")
        lines.extend(f"  {aggregate}" for aggregate in (*self.aggregates, *self.windows))
        if len(self.aggregates) + len(self.windows) > 1:
            lines.append("  full outer join on the dimensions")
        lines.extend(
            f"  {output.name} = {output.expression}" + ("" if output.fill is None else f" else {output.fill!r}")
            for output in self.outputs
        )
        if self.having:
            lines.append("having " + " and ".join(f"{c.metric} {c.op.value} {c.value!r}" for c in self.having))
        if self.order_by:
            lines.append("order by " + ", ".join(f"{o.field}{' desc' if o.descending else ''}" for o in self.order_by))
        if self.limit is not None or self.offset:
            lines.append(f"limit {self.limit} offset {self.offset}")
        if self.total_count:
            lines.append("count the rows before limit and offset")
        return "\n".join(lines)
