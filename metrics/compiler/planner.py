"""Query spec -> logical plan: which fact computes which measure, and how metrics combine them.

A measure of a time-relative metric (or of a gap-filled one) is read through a window of each output time
bucket (``window_plan``); every other measure comes from its fact's plain aggregate.
"""

from __future__ import annotations

import ast

from metrics.compiler.plan import Arithmetic, Expression, FactAggregate, Leaf, MetricOutput, Negate, Number, QueryPlan
from metrics.compiler.spec import QuerySpec
from metrics.compiler.window_plan import WindowAggregate, leaf_name, whole_bucket_facts
from metrics.expressions import OPERATORS, parse
from metrics.model import Aggregation, Measure, Metric, Window, WindowKind
from metrics.registry import TIME, Registry

BUCKET = Window(WindowKind.BUCKET)


class _Measures:
    """Builds each output's expression, collecting the windowed measures it reads by fact and window."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.windowed: dict[tuple[str, Window], dict[str, Measure]] = {}

    def leaf(self, name: str, measure: Measure, window: Window | None) -> Leaf:
        is_count = self.registry.is_count(measure)
        if window is None:
            return Leaf(name, measure.fact, is_count)
        windowed = leaf_name(name, window)
        self.windowed.setdefault((measure.fact, window), {})[windowed] = measure
        return Leaf(windowed, f"{measure.fact}__{window.tag}", is_count)

    def expression(self, metric: Metric, window: Window | None) -> Expression:
        if metric.window is not None:
            assert metric.base is not None  # a window always has a base
            return self.expression(self.registry.metric(metric.base), metric.window)
        if metric.measure is not None:
            return self.leaf(metric.name, metric.measure, window)
        if metric.expression is None:
            operands = []
            for part, operand in (("numerator", metric.numerator), ("denominator", metric.denominator)):
                if isinstance(operand, Measure):
                    operands.append(self.leaf(f"{metric.name}.{part}", operand, window))
                else:
                    operands.append(self.expression(self.registry.metric(str(operand)), window))
            return Arithmetic("/", operands[0], operands[1])
        return self._from_ast(parse(metric.expression), window)

    def _from_ast(self, node: ast.expr, window: Window | None) -> Expression:
        if isinstance(node, ast.BinOp):
            left, right = self._from_ast(node.left, window), self._from_ast(node.right, window)
            return Arithmetic(OPERATORS[type(node.op)], left, right)
        if isinstance(node, ast.UnaryOp):
            operand = self._from_ast(node.operand, window)
            return Negate(operand) if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.Name):
            return self.expression(self.registry.metric(node.id), window)
        assert isinstance(node, ast.Constant)  # validation admits nothing else
        return Number(float(node.value))

    def windows(self, spec: QuerySpec) -> tuple[WindowAggregate, ...]:
        if not self.windowed:
            return ()
        [time] = [ref for ref in spec.request.dimensions if ref.dimension == TIME and ref.grain is not None]
        assert time.grain is not None  # spec.resolve requires exactly one grain
        partitions = tuple(ref for ref in spec.request.dimensions if ref != time)
        return tuple(
            WindowAggregate(
                fact,
                window,
                time.grain,
                time.key,
                partitions,
                tuple(measures.items()),
                self._additive(measures),
                frozenset(name for name, measure in measures.items() if self.registry.is_count(measure)),
            )
            for (fact, window), measures in self.windowed.items()
        )

    def _additive(self, measures: dict[str, Measure]) -> bool:
        return all(
            self.registry.is_count(m) and m.aggregation is not Aggregation.COUNT_DISTINCT for m in measures.values()
        )


def _window(registry: Registry, spec: QuerySpec, name: str, shared: frozenset[str] = frozenset()) -> Window | None:
    """Time-relative and gap-filled metrics read whole buckets, every bucket of the range, and so do plain
    metrics of the ``shared`` facts (``whole_bucket_facts``); others plain rows."""
    times = [ref for ref in spec.request.dimensions if ref.dimension == TIME]
    if len(times) != 1 or times[0].grain is None:
        return None  # nothing to fill; time-relative metrics never get here (spec.resolve)
    if registry.is_time_relative(name) or registry.metric(name).fill is not None or spec.request.fill_gaps:
        return BUCKET
    return BUCKET if {fact.name for fact in registry.facts_of(name)} <= shared else None


def _shared_facts(spec: QuerySpec, registry: Registry) -> frozenset[str]:
    windowed = _Measures(registry)
    for name in spec.metrics:
        if window := _window(registry, spec, name):
            windowed.expression(registry.metric(name), window)
    return whole_bucket_facts(windowed.windows(spec), spec.start, spec.end, spec.request.timezone)


def plan_query(spec: QuerySpec, registry: Registry) -> QueryPlan:
    shared = _shared_facts(spec, registry)
    measures = _Measures(registry)
    outputs = tuple(
        MetricOutput(
            name,
            registry.output_type(name),
            measures.expression(registry.metric(name), _window(registry, spec, name, shared)),
            registry.metric(name).fill if _window(registry, spec, name, shared) else None,
        )
        for name in spec.metrics
    )
    by_fact: dict[str, dict[str, Measure]] = {}
    for metric in (name for name in spec.metrics if _window(registry, spec, name, shared) is None):
        for name, measure in registry.measures(metric).items():
            by_fact.setdefault(measure.fact, {})[name] = measure
    aggregates = tuple(FactAggregate(fact, tuple(found.items())) for fact, found in by_fact.items())
    request = spec.request
    return QueryPlan(
        aggregates=aggregates,
        dimensions=request.dimensions,
        dimension_types=spec.dimension_types,
        outputs=outputs,
        where=request.where,
        start=spec.start,
        end=spec.end,
        having=request.having,
        order_by=request.order_by,
        limit=request.limit,
        offset=request.offset,
        timezone=request.timezone,
        total_count=request.total_count,
        windows=measures.windows(spec),
    )
