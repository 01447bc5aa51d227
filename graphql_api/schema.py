"""The GraphQL schema, generated from the registry at start-up.

Every metric becomes a typed field (Int for counts, Float otherwise), every
dimension attribute a field of its dimension's object, and the ``where``,
``having`` and member types are generated per registry, so a metric added in
YAML appears in the schema, in GraphiQL's completion and in ``catalog``
without code. Names are snake_case in config and camelCase here.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from datetime import datetime
from enum import Enum
from typing import Any, Optional

import strawberry
from graphql import GraphQLError, OperationDefinitionNode
from strawberry.annotation import StrawberryAnnotation
from strawberry.extensions import MaxTokensLimiter, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types.field import StrawberryField

from graphql_api import resolvers
from graphql_api.cache_report import CacheReport
from graphql_api.document_cache import DocumentCache
from graphql_api.errors import ErrorCodes
from graphql_api.execution import RowsExecutionContext
from graphql_api.inputs import (
    FILTER_INPUTS,
    TIME_ZONE,
    BooleanFilter,
    DateTimeFilter,
    IntFilter,
    NumberFilter,
    OrderByInput,
    TimeRangeInput,
    TimeZone,
)
from graphql_api.limits import DocumentLimits, Limits
from graphql_api.settings import Settings
from graphql_api.types import Catalog, Explanation, Member, PageInfo, Row, Table
from graphql_api.windows import metric_field
from metrics.model import DataType, Dimension, TimeGrain
from metrics.registry import Registry
from metrics.validation import camel

_SCALARS: dict[DataType, type] = {
    DataType.STRING: str,
    DataType.INTEGER: int,
    DataType.FLOAT: float,
    DataType.BOOLEAN: bool,
    DataType.TIMESTAMP: datetime,
}

TimeGrainEnum = strawberry.enum(
    Enum("TimeGrain", {grain.name: grain.value for grain in TimeGrain}),
    description="Time bucket size; weeks are ISO weeks starting on Monday.",
)


def pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


class NamedOperation(SchemaExtension):
    """A document of several operations must say which to run (``operationName``), as the GraphQL spec asks.

    Strawberry would run the first one, so a client that forgot the name would get
    an answer to a question it may not have meant.
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        names = (
            [
                node.name.value if node.name else "(anonymous)"
                for node in document.definitions
                if isinstance(node, OperationDefinitionNode)
            ]
            if document
            else []
        )
        if len(names) > 1 and context._provided_operation_name is None and context.pre_execution_errors is None:
            message = (
                f"the document has {len(names)} operations ({', '.join(names)}); name the one to run with operationName"
            )
            context.pre_execution_errors = [GraphQLError(message, extensions={"code": "BAD_REQUEST"})]
        yield


def _make_type(
    name: str, fields: dict[str, StrawberryField], *, is_input: bool = False, description: str | None = None
) -> type:
    """A Strawberry type from fields that carry their own annotations (which may refer to the type itself)."""
    namespace: dict[str, Any] = dict(fields)
    # Resolver fields take their type from the resolver; the others need an annotation for the dataclass.
    namespace["__annotations__"] = {
        python_name: field.type_annotation.annotation
        for python_name, field in fields.items()
        if field.base_resolver is None and field.type_annotation is not None
    }
    cls = types.new_class(name, (), {}, lambda ns: ns.update(namespace))
    decorate = strawberry.input if is_input else strawberry.type
    return decorate(cls, name=name, description=description)


def _input(graphql_name: str, annotation: Any, description: str | None = None) -> StrawberryField:
    return StrawberryField(
        graphql_name=graphql_name,
        type_annotation=StrawberryAnnotation(annotation),
        default=None,
        description=description,
    )


def _value_field(key: str, python_type: type, graphql_name: str, description: str | None) -> StrawberryField:
    def resolve(root: Row | Member) -> Any:
        return root.values.get(key)

    resolve.__annotations__ = {"return": Optional[python_type]}
    return strawberry.field(resolver=resolve, name=graphql_name, description=description)


def _describe_metric(registry: Registry, name: str) -> str:
    metric = registry.metrics[name]
    details = ", ".join(
        filter(None, [metric.unit and f"unit: {metric.unit}", metric.format and f"format: {metric.format}"])
    )
    return f"{metric.label}. {metric.description}" + (f" ({details})" if details else "")


class SchemaBuilder:
    def __init__(self, registry: Registry, settings: Settings, extensions: list[Any] | None = None) -> None:
        self.registry = registry
        self.settings = settings
        self.extensions = extensions or []
        self.table_dimensions = [d for d in registry.dimensions.values() if d.is_table]
        self.value_dimensions = [d for d in registry.dimensions.values() if not d.is_table]

    def metric_fields(self, make: Callable[..., StrawberryField] = _value_field) -> dict[str, StrawberryField]:
        return {
            name: make(
                name, _SCALARS[self.registry.output_type(name)], camel(name), _describe_metric(self.registry, name)
            )
            for name in self.registry.metrics
        }

    def _row_metric_field(self, name: str, *rest: Any) -> StrawberryField:
        """Plain metrics take the ad hoc ``window`` and ``compare`` arguments; time-relative ones are one already."""
        return (_value_field if self.registry.is_time_relative(name) else metric_field)(name, *rest)

    def attribute_fields(self, dimension: Dimension) -> dict[str, StrawberryField]:
        return {
            a.name: _value_field(
                f"{dimension.name}.{a.name}", _SCALARS[a.type], camel(a.name), a.description or a.label
            )
            for a in dimension.attributes
        }

    def row_type(self) -> type:
        fields: dict[str, StrawberryField] = {}

        def resolve_time(root: Row, grain: Any) -> Optional[datetime]:
            return root.values.get(f"time.{grain.value}")

        resolve_time.__annotations__ = {"grain": TimeGrainEnum, "return": Optional[datetime]}
        fields["time"] = strawberry.field(
            resolver=resolve_time,
            description="Start of the time bucket containing the event, in the request's time zone.",
        )
        fields["day_of_week"] = _value_field(
            "time.day_of_week", int, "dayOfWeek", "ISO day of week of the event, 1 = Monday."
        )
        fields["hour_of_day"] = _value_field(
            "time.hour_of_day", int, "hourOfDay", "Hour of the event, 0-23, in the request's time zone."
        )
        fields["is_weekend"] = _value_field(
            "time.is_weekend", bool, "isWeekend", "Saturday or Sunday in the request's time zone."
        )
        for dimension in self.table_dimensions:
            attributes = _make_type(
                f"{pascal(dimension.name)}Attributes",
                self.attribute_fields(dimension),
                description=dimension.description,
            )

            def same_row(root: Row) -> Any:
                return root

            same_row.__annotations__ = {"return": attributes}
            fields[dimension.name] = strawberry.field(
                resolver=same_row, name=camel(dimension.name), description=dimension.description or dimension.label
            )
        for dimension in self.value_dimensions:
            fields[dimension.name] = _value_field(
                dimension.name,
                _SCALARS[dimension.type],
                camel(dimension.name),
                dimension.description or dimension.label,
            )
        fields.update(self.metric_fields(self._row_metric_field))
        return _make_type("MetricRow", fields, description="One row: the selected dimension attributes and metrics.")

    def where_type(self) -> type:
        fields: dict[str, StrawberryField] = {
            "time": _input("time", Optional[TimeRangeInput], "Event time range (top level only)."),
            "day_of_week": _input("dayOfWeek", Optional[IntFilter]),
            "hour_of_day": _input("hourOfDay", Optional[IntFilter]),
            "is_weekend": _input("isWeekend", Optional[BooleanFilter]),
        }
        for dimension in self.table_dimensions:
            attribute_inputs = {
                a.name: _input(camel(a.name), Optional[FILTER_INPUTS[a.type]]) for a in dimension.attributes
            }
            filter_type = _make_type(f"{pascal(dimension.name)}Filter", attribute_inputs, is_input=True)
            fields[dimension.name] = _input(camel(dimension.name), Optional[filter_type], dimension.label)
        for dimension in self.value_dimensions:
            fields[dimension.name] = _input(
                camel(dimension.name), Optional[FILTER_INPUTS[dimension.type]], dimension.label
            )
        for python_name, graphql_name in (("and_", "and"), ("or_", "or"), ("not_", "not")):
            fields[python_name] = _input(graphql_name, Optional[Any])
        where = _make_type(
            "MetricsWhere",
            fields,
            is_input=True,
            description="Filters on dimension attributes, applied before aggregation.",
        )
        # The boolean combinators refer to the type itself, which exists only now.
        nested = {"and_": Optional[list[where]], "or_": Optional[list[where]], "not_": Optional[where]}
        for field in where.__strawberry_definition__.fields:
            if field.python_name in nested:
                field.type_annotation = StrawberryAnnotation(nested[field.python_name])
        return where

    def _having_filter(self, metric: str) -> type:
        """The compiler compares a metric's value with values of its own type: times for a min or max of timestamps."""
        return DateTimeFilter if self.registry.output_type(metric) is DataType.TIMESTAMP else NumberFilter

    def having_type(self) -> type:
        fields = {name: _input(camel(name), Optional[self._having_filter(name)]) for name in self.registry.metrics}
        return _make_type(
            "MetricsHaving",
            fields,
            is_input=True,
            description="Filters on metric values, applied after aggregation; all must hold.",
        )

    def build(self) -> strawberry.Schema:
        row, where, having = self.row_type(), self.where_type(), self.having_type()
        values = _make_type("MetricValues", self.metric_fields(), description="Metrics of one dimension member.")
        result = _make_type(
            "MetricsResult",
            {
                "rows": strawberry.field(
                    resolver=resolvers.rows(row), description="The rows; what is selected here is what is computed."
                ),
                "total_count": strawberry.field(
                    resolver=resolvers.total_count, description="Rows before limit and offset."
                ),
                "page_info": strawberry.field(resolver=resolvers.page_info),
            },
        )
        query_fields: dict[str, StrawberryField] = {
            "metrics": strawberry.field(
                resolver=resolvers.metrics(self.registry, result, where, having),
                description="Metrics grouped by the dimension attributes selected under rows.",
            ),
            "catalog": strawberry.field(
                resolver=resolvers.catalog(self.registry),
                description="Every metric and dimension of the live registry.",
            ),
            "table": strawberry.field(
                resolver=resolvers.table(self.registry, where, having),
                description="Metric and dimension names in, a table out: for tools that build queries at run time.",
            ),
            "explain": strawberry.field(
                resolver=resolvers.explain(self.registry, where, having),
                description="The compiled SQL and plan of a query (analyst role).",
            ),
        }
        for dimension in self.table_dimensions:
            member_fields = self.attribute_fields(dimension)
            member_fields["metrics"] = strawberry.field(
                resolver=resolvers.member_metrics(self.registry, dimension, values, where),
                description=f"Metrics of this {dimension.label.lower()}, in one query for all members.",
            )
            member = _make_type(pascal(dimension.name), member_fields, description=dimension.description)
            plural = f"{dimension.name}s"
            query_fields[plural] = strawberry.field(
                resolver=resolvers.members(self.registry, dimension, member),
                name=camel(plural),
                description=f"{dimension.label} members (current attributes).",
            )
        query = _make_type("Query", query_fields)
        limits = Limits(self.settings.max_depth, self.settings.max_aliases, self.settings.max_cost)
        return MetricsSchema(
            query=query,
            execution_context_class=RowsExecutionContext,
            types=[PageInfo, Catalog, Table, Explanation, OrderByInput],
            config=StrawberryConfig(scalar_map={TimeZone: TIME_ZONE}),
            extensions=[
                *self.extensions,  # before ErrorCodes: they see the coded errors on the way out
                CacheReport,
                ErrorCodes,
                lambda: MaxTokensLimiter(max_token_count=self.settings.max_tokens),
                DocumentCache().extension,  # a known text's parse and validation outcome, reused
                lambda: DocumentLimits(limits),  # before anything else walks a new document
                NamedOperation,
            ],
        )


class MetricsSchema(strawberry.Schema):
    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        """``ErrorCodes`` logs the unexpected errors with their request id; expected ones are the client's."""


def build_schema(
    registry: Registry, settings: Settings | None = None, extensions: list[Any] | None = None
) -> strawberry.Schema:
    """The schema of ``registry``, limiting queries as ``settings`` say (the defaults without)."""
    return SchemaBuilder(registry, settings or Settings(warehouse_url=""), extensions).build()
