"""What the client selected under ``rows``: the selection set is the query.

Walks the GraphQL AST (named and inline fragments, aliases, ``@skip`` and
``@include``, variables) and returns the metrics and dimension attributes to
compute, plus the names a client may order by.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from graphql import FieldNode, FragmentSpreadNode, GraphQLBoolean, GraphQLInputType, InlineFragmentNode, value_from_ast
from graphql.language import SelectionSetNode
from strawberry.types import Info

from graphql_api.windows import requested_window
from metrics.compiler import DimensionRef
from metrics.compiler.adhoc import adhoc_metric
from metrics.model import Metric, TimeGrain
from metrics.registry import Registry
from metrics.validation import camel

TIME_FIELDS = {"dayOfWeek": "day_of_week", "hourOfDay": "hour_of_day", "isWeekend": "is_weekend"}


@dataclass
class Selection:
    metrics: list[str] = field(default_factory=list)
    dimensions: list[DimensionRef] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    """Client-facing name (GraphQL name, alias, or path like ``tier.name``) -> metric name or attribute key."""
    derived: list[Metric] = field(default_factory=list)
    """Ad hoc time-relative forms of metrics (``verificationCount(window: {days: 7})``)."""

    def add_metric(self, name: str, *aliases: str) -> None:
        if name not in self.metrics:
            self.metrics.append(name)
        self.names.update(dict.fromkeys(aliases, name))

    def add_dimension(self, ref: DimensionRef, *aliases: str) -> None:
        if ref not in self.dimensions:
            self.dimensions.append(ref)
        self.names.update(dict.fromkeys(aliases, ref.key))


def argument(node: Any, name: str, type_: GraphQLInputType, variables: dict[str, Any]) -> Any:
    for given in node.arguments or ():
        if given.name.value == name:
            return value_from_ast(given.value, type_, variables)
    return None


def _included(node: Any, variables: dict[str, Any]) -> bool:
    for directive in node.directives or ():
        condition = argument(directive, "if", GraphQLBoolean, variables)
        if (directive.name.value == "skip" and condition) or (directive.name.value == "include" and not condition):
            return False
    return True


def fields(selection_set: SelectionSetNode | None, info: Info) -> Iterator[FieldNode]:
    """The fields of a selection set with every fragment flattened in."""
    raw = info._raw_info
    for node in selection_set.selections if selection_set else ():
        if not _included(node, raw.variable_values):
            continue
        if isinstance(node, FieldNode):
            yield node
        elif isinstance(node, InlineFragmentNode):
            yield from fields(node.selection_set, info)
        elif isinstance(node, FragmentSpreadNode):
            yield from fields(raw.fragments[node.name.value].selection_set, info)


def child_fields(info: Info, name: str) -> Iterator[FieldNode]:
    """Fields selected under the current field's child ``name`` (e.g. ``rows``)."""
    for node in info._raw_info.field_nodes:
        for child in fields(node.selection_set, info):
            if child.name.value == name:
                yield from fields(child.selection_set, info)


def own_fields(info: Info) -> Iterator[FieldNode]:
    """Fields selected under the current field."""
    for node in info._raw_info.field_nodes:
        yield from fields(node.selection_set, info)


@dataclass(frozen=True)
class RowLayout:
    """Which result column each field of a ``MetricRow`` shows, by GraphQL field name.

    ``values`` maps a leaf field to its column (a metric name or attribute key); ``objects`` maps a table
    dimension's field to its attributes' fields and columns. ``time`` is the one field whose column depends
    on an argument (``time_key``). The generated resolvers read the same keys, one cell at a time.
    """

    values: dict[str, str]
    objects: dict[str, dict[str, str]]

    @staticmethod
    def time_key(grain: Any) -> str:
        return f"time.{_grain(grain).value}"


@lru_cache(maxsize=8)
def row_layout(registry: Registry) -> RowLayout:
    values = {camel(name): name for name in registry.metrics}
    values |= {graphql: f"time.{part}" for graphql, part in TIME_FIELDS.items()}
    objects: dict[str, dict[str, str]] = {}
    for name, dimension in registry.dimensions.items():
        if dimension.is_table:
            objects[camel(name)] = {camel(a.name): f"{name}.{a.name}" for a in dimension.attributes}
        else:
            values[camel(name)] = name
    return RowLayout(values, objects)


def _grain(value: Any) -> TimeGrain:
    value = getattr(value, "value", value)
    try:
        return TimeGrain(value)
    except ValueError:
        return TimeGrain[value]


def metric_selection(info: Info, registry: Registry, nodes: Iterator[FieldNode]) -> Selection:
    by_graphql_name = registry.by_graphql_name
    dimensions = {camel(name): dimension for name, dimension in registry.dimensions.items()}
    schema, variables = info._raw_info.schema, info._raw_info.variable_values
    grain_type = schema.get_type("TimeGrain")
    selection = Selection()
    for node in nodes:
        name, alias = node.name.value, node.alias.value if node.alias else node.name.value
        if name in by_graphql_name:
            window = requested_window(
                argument(node, "window", schema.get_type("MetricWindow"), variables),  # type: ignore[arg-type]
                argument(node, "compare", schema.get_type("Compare"), variables),  # type: ignore[arg-type]
            )
            if window is None:
                selection.add_metric(by_graphql_name[name], name, alias)
            else:
                derived = adhoc_metric(registry, by_graphql_name[name], window)
                selection.derived += [] if derived in selection.derived else [derived]
                selection.add_metric(derived.name, alias)
        elif name == "time":
            grain = _grain(argument(node, "grain", grain_type, info._raw_info.variable_values))  # type: ignore[arg-type]
            selection.add_dimension(DimensionRef("time", grain=grain), alias, f"time.{grain.value}")
        elif name in TIME_FIELDS:
            selection.add_dimension(DimensionRef("time", TIME_FIELDS[name]), name, alias)
        elif name in dimensions:
            dimension = dimensions[name]
            if not dimension.is_table:
                selection.add_dimension(DimensionRef(dimension.name), name, alias)
                continue
            attributes = {camel(a.name): a.name for a in dimension.attributes}
            for child in fields(node.selection_set, info):
                if child.name.value in attributes:
                    ref = DimensionRef(dimension.name, attributes[child.name.value])
                    selection.add_dimension(
                        ref,
                        f"{name}.{child.name.value}",
                        f"{alias}.{child.alias.value if child.alias else child.name.value}",
                    )
    return selection
