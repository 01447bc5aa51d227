"""Query spec -> logical plan: which fact computes which measure, and how metrics combine them."""

from __future__ import annotations

import ast

from metrics.compiler.plan import Arithmetic, Expression, FactAggregate, Leaf, MetricOutput, Negate, Number, QueryPlan
from metrics.compiler.spec import QuerySpec
from metrics.expressions import OPERATORS, parse
from metrics.model import Measure, Metric
from metrics.registry import Registry


def _leaf(registry: Registry, name: str, measure: Measure) -> Leaf:
    return Leaf(name, measure.fact, registry.is_count(measure))


def _expression(registry: Registry, metric: Metric) -> Expression:
    if metric.measure is not None:
        return _leaf(registry, metric.name, metric.measure)
    if metric.expression is None:
        operands = []
        for part, operand in (("numerator", metric.numerator), ("denominator", metric.denominator)):
            if isinstance(operand, Measure):
                operands.append(_leaf(registry, f"{metric.name}.{part}", operand))
            else:
                operands.append(_expression(registry, registry.metric(str(operand))))
        return Arithmetic("/", operands[0], operands[1])
    return _from_ast(registry, parse(metric.expression))


def _from_ast(registry: Registry, node: ast.expr) -> Expression:
    if isinstance(node, ast.BinOp):
        return Arithmetic(OPERATORS[type(node.op)], _from_ast(registry, node.left), _from_ast(registry, node.right))
    if isinstance(node, ast.UnaryOp):
        operand = _from_ast(registry, node.operand)
        return Negate(operand) if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Name):
        return _expression(registry, registry.metric(node.id))
    assert isinstance(node, ast.Constant)  # validation admits nothing else
    return Number(float(node.value))


def plan_query(spec: QuerySpec, registry: Registry) -> QueryPlan:
    by_fact: dict[str, dict[str, Measure]] = {}
    for metric in spec.metrics:
        for name, measure in registry.measures(metric).items():
            by_fact.setdefault(measure.fact, {})[name] = measure
    aggregates = tuple(FactAggregate(fact, tuple(measures.items())) for fact, measures in by_fact.items())
    outputs = tuple(
        MetricOutput(name, registry.output_type(name), _expression(registry, registry.metric(name)))
        for name in spec.metrics
    )
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
    )
