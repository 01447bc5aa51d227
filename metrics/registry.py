"""The loaded, validated semantic model with the lookups the compiler and API need."""

from __future__ import annotations

import ast
import copy
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path

from metrics.errors import ConfigError, InvalidDimension, Issue, UnknownDimension, UnknownMetric
from metrics.expressions import parse
from metrics.loader import BUILTIN_CONFIG, Config, read_config
from metrics.model import Aggregation, DataType, Dimension, Fact, Format, Measure, Metric, Rollup
from metrics.validation import camel, references, validate

CONFIG_ENV = "GRACE_METRICS_CONFIG"
_DEFAULT_FORMATS = {
    DataType.INTEGER: Format.INTEGER,
    DataType.FLOAT: Format.NUMBER,
    DataType.TIMESTAMP: Format.DATETIME,
}
TIME = "time"


class Registry:
    """Read-only: built once from config, shared by every request."""

    def __init__(self, config: Config) -> None:
        self.dimensions: dict[str, Dimension] = dict(config.dimensions)
        self.facts: dict[str, Fact] = dict(config.facts)
        self.metrics: dict[str, Metric] = dict(config.metrics)
        self.rollups: dict[str, Rollup] = dict(config.rollups)
        for name, metric in self.metrics.items():
            if metric.format is None:
                self.metrics[name] = replace(metric, format=_DEFAULT_FORMATS[self.output_type(name)].value)

    def metric(self, name: str) -> Metric:
        try:
            return self.metrics[name]
        except KeyError:
            raise UnknownMetric(name, self.metrics) from None

    def dimension(self, name: str) -> Dimension:
        try:
            return self.dimensions[name]
        except KeyError:
            raise UnknownDimension(name, [TIME, *self.dimensions]) from None

    def measures(self, name: str) -> dict[str, Measure]:
        """Every measure a metric is computed from, by a stable name (the metric's, or ``metric.numerator``)."""
        metric = self.metric(name)
        if metric.measure is not None:
            return {name: metric.measure}
        found: dict[str, Measure] = {}
        for part, operand in (("numerator", metric.numerator), ("denominator", metric.denominator)):
            if isinstance(operand, Measure):
                found[f"{name}.{part}"] = operand
        for reference in self.uses(metric):
            found.update(self.measures(reference))
        return found

    def facts_of(self, name: str) -> list[Fact]:
        return [self.facts[fact] for fact in dict.fromkeys(measure.fact for measure in self.measures(name).values())]

    def allowed_dimensions(self, name: str) -> set[str]:
        """Dimensions every fact of the metric can be sliced by (time always)."""
        allowed = {TIME} | set(self.dimensions)
        for fact in self.facts_of(name):
            allowed &= {TIME, *fact.dimensions}
        return allowed

    def check_dimension(self, metric: str, dimension: str) -> None:
        if dimension not in self.allowed_dimensions(metric):
            raise InvalidDimension(metric, dimension, self.allowed_dimensions(metric))

    def is_count(self, measure: Measure) -> bool:
        """Counts (and sums of integers) are Int, and read as 0, not null, where a fact has no rows."""
        if measure.aggregation in (Aggregation.COUNT, Aggregation.COUNT_DISTINCT):
            return True
        column_type = self.facts[measure.fact].columns.get(measure.column or "")
        return measure.aggregation is Aggregation.SUM and column_type is DataType.INTEGER

    def output_type(self, name: str) -> DataType:
        """INTEGER for counts, the column's type for minima and maxima of integers and timestamps, FLOAT otherwise."""
        metric = self.metric(name)
        if metric.base is not None:
            return self.output_type(metric.base)
        if metric.expression is not None:
            return DataType.INTEGER if self._is_integer(parse(metric.expression)) else DataType.FLOAT
        measure = metric.measure
        if measure is None:
            return DataType.FLOAT
        if self.is_count(measure):
            return DataType.INTEGER
        column_type = self.facts[measure.fact].columns.get(measure.column or "")
        if measure.aggregation in (Aggregation.MIN, Aggregation.MAX) and column_type in (
            DataType.INTEGER,
            DataType.TIMESTAMP,
        ):
            return column_type
        return DataType.FLOAT

    def _is_integer(self, node: ast.expr) -> bool:
        """Sums, differences and products of integer metrics are integers (numbers in an expression are floats)."""
        if isinstance(node, ast.Name):
            return self.output_type(node.id) is DataType.INTEGER
        if isinstance(node, ast.UnaryOp):
            return self._is_integer(node.operand)
        if isinstance(node, ast.BinOp):
            return not isinstance(node.op, ast.Div) and self._is_integer(node.left) and self._is_integer(node.right)
        return False

    def extended(self, metrics: Iterable[Metric]) -> Registry:
        """This registry plus metrics a request defines (``compiler.adhoc``); this one is left as it is."""
        extended = copy.copy(self)
        extended.metrics = {**self.metrics, **{metric.name: metric for metric in metrics}}
        extended.__dict__.pop("by_graphql_name", None)
        return extended

    def is_time_relative(self, name: str) -> bool:
        """Whether the metric reads windows or earlier buckets (itself or a metric it uses), so needs a time grain."""
        metric = self.metric(name)
        return metric.window is not None or any(self.is_time_relative(used) for used in self.uses(metric))

    @staticmethod
    def uses(metric: Metric) -> list[str]:
        """The metrics this one is computed from: its base, or those its expression or ratio names."""
        return [metric.base] if metric.base is not None else references(metric)

    @cached_property
    def by_graphql_name(self) -> dict[str, str]:
        return {camel(name): name for name in self.metrics}


def config_directories(extra: Iterable[str | Path] = ()) -> list[Path]:
    """The built-in catalog, then ``GRACE_METRICS_CONFIG`` (os.pathsep-separated), then ``extra``."""
    from_env = [Path(p) for p in os.environ.get(CONFIG_ENV, "").split(os.pathsep) if p]
    return [BUILTIN_CONFIG, *from_env, *map(Path, extra)]


def load_registry(extra: Sequence[str | Path] = ()) -> Registry:
    """The registry of the built-in catalog plus the user's config; raises ``ConfigError`` listing every problem."""
    directories = config_directories(extra)
    missing = [d for d in directories if not d.is_dir()]
    config = read_config([d for d in directories if d.is_dir()])
    issues = validate(config)
    if missing:
        issues = [Issue("missing_directory", "config directory does not exist", str(d), 0) for d in missing] + issues
    if issues:
        raise ConfigError(issues)
    return Registry(config)
