"""Thin resolvers: GraphQL arguments and selections -> ``MetricRequest`` -> loader -> rows.

Each factory closes over the registry and the generated types it needs, and
gives its resolver real annotations so Strawberry can type its arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, Optional

import strawberry
from strawberry.types import Info

from graphql_api.errors import ApiError
from graphql_api.inputs import OrderByInput, TimeZone, boolean_parts, combine, conditions, having_conditions, time_bound
from graphql_api.loaders import MemberKey
from graphql_api.selection import Selection, child_fields, metric_selection, own_fields
from graphql_api.types import (
    Catalog,
    CatalogAttribute,
    CatalogDimension,
    CatalogMetric,
    Explanation,
    Member,
    PageInfo,
    ResultRows,
    Table,
    TableColumn,
    TableRows,
)
from metrics.compiler import DimensionRef, Filter, MetricRequest, OrderBy, OutputColumn, TimeRange
from metrics.compiler.request import TIME_PARTS
from metrics.errors import InvalidFilter, InvalidRequest, UnknownMetric, did_you_mean
from metrics.model import DataType, Dimension
from metrics.registry import TIME, Registry
from metrics.results import QueryResult, isoformats
from metrics.validation import camel


@dataclass
class ResultPage:
    result: QueryResult
    offset: int


def _annotate(function: Callable[..., Any], returns: Any, **parameters: Any) -> Callable[..., Any]:
    function.__annotations__ = {**parameters, "return": returns}
    return function


def convert_where(registry: Registry, where: Any, *, top_level: bool = True) -> tuple[Filter | None, TimeRange | None]:
    if where is None:
        return None, None
    parts: list[Filter] = []
    time_range = None
    for name, value in vars(where).items():
        if value is None or name in ("and_", "or_", "not_"):
            continue
        if name == TIME:
            if not top_level:
                raise InvalidFilter("where.time (the event time range) is only allowed at the top level of where")
            time_range = TimeRange(time_bound("from", value.from_), time_bound("to", value.to))
        elif name in TIME_PARTS:
            parts.extend(conditions(DimensionRef(TIME, name), value))
        elif registry.dimensions[name].is_table:
            for attribute, operators in vars(value).items():
                if operators is not None:
                    parts.extend(conditions(DimensionRef(name, attribute), operators))
        else:
            parts.extend(conditions(DimensionRef(name), value))
    parts.extend(boolean_parts(where, lambda nested: convert_where(registry, nested, top_level=False)[0]))
    return combine(parts), time_range


def build_request(
    registry: Registry,
    selection: Selection,
    where: Any,
    having: Any,
    order_by: list[OrderByInput] | None,
    limit: int | None,
    offset: int,
    timezone: str,
    total_count: bool,
    fill_gaps: bool = False,
    rollups: bool = True,
) -> MetricRequest:
    condition, time_range = convert_where(registry, where)
    selected = {*selection.metrics, *(ref.key for ref in selection.dimensions)}
    orders = []
    for order in order_by or ():
        field = selection.names.get(order.field) or registry.by_graphql_name.get(order.field) or order.field
        if field not in selected:
            raise ApiError(
                f"cannot order by {order.field!r}{did_you_mean(order.field, selection.names)}: "
                "order by a selected metric or dimension attribute, by its name, alias or path "
                f"({', '.join(selection.names)})",
                "UNKNOWN_FIELD",
            )
        orders.append(OrderBy(field, descending=order.direction.value == "desc"))
    return MetricRequest(
        metrics=tuple(selection.metrics),
        dimensions=tuple(selection.dimensions),
        where=condition,
        time_range=time_range,
        having=having_conditions(having, selection.metrics) if having else (),
        order_by=tuple(orders),
        limit=limit,
        offset=offset,
        timezone=timezone,
        total_count=total_count,
        fill_gaps=fill_gaps,
        derived=tuple(selection.derived),
        rollups=rollups,
    )


ROLLUPS_ARGUMENT = Annotated[
    bool,
    strawberry.argument(
        description="Answer from rollups where they give exactly the facts' answer (false: from the facts, to compare)."
    ),
]


def _counts_rows(info: Info) -> bool:
    """Whether ``totalCount`` or ``pageInfo`` is selected: only then is the total worth computing."""
    return any(node.name.value in ("totalCount", "pageInfo") for node in own_fields(info))


def metrics(registry: Registry, result_type: type, where_type: type, having_type: type) -> Callable[..., Any]:
    async def resolve(
        info: Info,
        where: Any = None,
        having: Any = None,
        order_by: Any = None,
        limit: Any = None,
        offset: int = 0,
        timezone: str = "UTC",
        fill_gaps: bool = False,
        rollups: bool = True,
    ) -> Any:
        info.context.require("viewer")
        selection = metric_selection(info, registry, child_fields(info, "rows"))
        if not selection.metrics:
            raise InvalidRequest("select at least one metric under rows")
        request = build_request(
            registry,
            selection,
            where,
            having,
            order_by,
            limit,
            offset,
            timezone,
            _counts_rows(info),
            fill_gaps,
            rollups,
        )
        return ResultPage(await info.context.metrics.load(info.context.scoped(request)), offset)

    return _annotate(
        resolve,
        result_type,
        info=Info,
        where=Optional[where_type],
        having=Optional[having_type],
        order_by=Optional[list[OrderByInput]],
        limit=Optional[int],
        offset=int,
        timezone=TimeZone,
        fill_gaps=Annotated[
            bool,
            strawberry.argument(
                description="Return every time bucket of the range (one time grain needed): counts 0, others null."
            ),
        ],
        rollups=ROLLUPS_ARGUMENT,
    )


def rows(row_type: type) -> Callable[..., Any]:
    def resolve(root: ResultPage) -> Any:
        return ResultRows(root.result)

    return _annotate(resolve, list[row_type])


def total_count(root: ResultPage) -> int:
    total = root.result.total_count
    assert total is not None, "a selected totalCount is always computed (_counts_rows)"
    return total


def page_info(root: ResultPage) -> PageInfo:
    total = root.result.total_count
    assert total is not None, "a selected pageInfo always has the total (_counts_rows)"
    return PageInfo(has_next_page=total > root.offset + len(root.result))


def _named_request(
    registry: Registry,
    metric_names: list[str],
    dimension_names: list[str],
    where: Any,
    having: Any,
    order_by: Any,
    limit: Any,
    offset: int,
    timezone: str,
    total_count: bool = False,
) -> MetricRequest:
    dimensions_by_camel = {camel(name): name for name in registry.dimensions}
    selection = Selection()
    for name in metric_names:
        metric = name if name in registry.metrics else registry.by_graphql_name.get(name)
        if metric is None:
            raise UnknownMetric(name, [*registry.metrics, *registry.by_graphql_name])
        selection.add_metric(metric, name)
    for name in dimension_names:
        head, dot, rest = name.partition(".")
        ref = DimensionRef.parse(dimensions_by_camel.get(head, head) + dot + rest)
        selection.add_dimension(ref, name, ref.key)
    return build_request(registry, selection, where, having, order_by, limit, offset, timezone, total_count)


def _shown(column: OutputColumn, request: MetricRequest) -> bool:
    """Dimension columns, and the requested metrics (a merged query may have computed others)."""
    return not column.is_metric or column.name in request.metrics


def _named_arguments(where_type: type, having_type: type) -> dict[str, Any]:
    """The arguments of ``table`` and ``explain``: metric and dimension names as strings, and the request's shape."""
    return {
        "info": Info,
        "metrics": list[str],
        "dimensions": Optional[list[str]],
        "where": Optional[where_type],
        "having": Optional[having_type],
        "order_by": Optional[list[OrderByInput]],
        "limit": Optional[int],
        "offset": int,
        "timezone": TimeZone,
        "rollups": ROLLUPS_ARGUMENT,
    }


def table(registry: Registry, where_type: type, having_type: type) -> Callable[..., Any]:
    async def resolve(
        info: Info,
        metrics: list[str],
        dimensions: list[str] | None = None,
        where: Any = None,
        having: Any = None,
        order_by: Any = None,
        limit: Any = None,
        offset: int = 0,
        timezone: str = "UTC",
        rollups: bool = True,
    ) -> Table:
        info.context.require("viewer")
        request = _named_request(
            registry, metrics, dimensions or [], where, having, order_by, limit, offset, timezone, _counts_rows(info)
        )
        request = replace(request, rollups=rollups)
        result: QueryResult = await info.context.metrics.load(info.context.scoped(request))
        wanted = [(c, data) for c, data in zip(result.columns, result.values, strict=True) if _shown(c, request)]
        data = [isoformats(values) if c.type is DataType.TIMESTAMP else values for c, values in wanted]
        return Table(
            columns=[TableColumn(name=c.name, type=c.type.value) for c, _ in wanted],
            rows=TableRows(map(list, zip(*data, strict=True))),
            total_count=result.total_count,  # type: ignore[arg-type]  # computed whenever selected
        )

    return _annotate(resolve, Table, **_named_arguments(where_type, having_type))


def explain(registry: Registry, where_type: type, having_type: type) -> Callable[..., Any]:
    async def resolve(
        info: Info,
        metrics: list[str],
        dimensions: list[str] | None = None,
        where: Any = None,
        having: Any = None,
        order_by: Any = None,
        limit: Any = None,
        offset: int = 0,
        timezone: str = "UTC",
        rollups: bool = True,
    ) -> Explanation:
        info.context.require("analyst")
        request = _named_request(registry, metrics, dimensions or [], where, having, order_by, limit, offset, timezone)
        request = replace(request, rollups=rollups)
        engine = info.context.engine
        scoped = info.context.scoped(request)
        await engine.data_version()  # which rollups the warehouse holds now
        compiled = engine.compile(scoped)
        cached = await engine.cached(scoped)
        return Explanation(
            sql=compiled.sql(engine.backend.dialect),
            plan=str(compiled.plan),
            cache="off" if cached is None else "hit" if cached else "miss",
        )

    return _annotate(resolve, Explanation, **_named_arguments(where_type, having_type))


def catalog(registry: Registry) -> Callable[..., Any]:
    def resolve(info: Info) -> Catalog:
        info.context.require("viewer")
        metrics = [
            CatalogMetric(
                name=m.name,
                graphql_name=camel(m.name),
                label=m.label,
                description=m.description,
                kind=m.kind,
                type=registry.output_type(m.name).value,
                unit=m.unit,
                format=m.format,
                facts=[fact.name for fact in registry.facts_of(m.name)],
                dimensions=sorted(registry.allowed_dimensions(m.name)),
            )
            for m in registry.metrics.values()
        ]
        time = CatalogDimension(
            name=TIME,
            graphql_name=TIME,
            label="Time",
            description="The event time of each fact.",
            kind="time",
            attributes=[
                CatalogAttribute(name=n, graphql_name=camel(n), label=n.replace("_", " ").capitalize(), type=t)
                for n, t in (
                    ("time", "timestamp"),
                    ("day_of_week", "integer"),
                    ("hour_of_day", "integer"),
                    ("is_weekend", "boolean"),
                )
            ],
        )
        dimensions = [time] + [
            CatalogDimension(
                name=d.name,
                graphql_name=camel(d.name),
                label=d.label,
                description=d.description,
                kind="table" if d.is_table else "value",
                attributes=[
                    CatalogAttribute(name=a.name, graphql_name=camel(a.name), label=a.label, type=a.type.value)
                    for a in d.attributes
                ],
            )
            for d in registry.dimensions.values()
        ]
        return Catalog(metrics=metrics, dimensions=dimensions)

    return _annotate(resolve, Catalog, info=Info)


def members(registry: Registry, dimension: Dimension, member_type: type) -> Callable[..., Any]:
    identifier = f"{dimension.name}.{dimension.attributes[0].name}"

    async def resolve(info: Info, limit: int = 100, offset: int = 0) -> Any:
        info.context.require("viewer")
        scope = info.context.scope
        where = None if scope is None else scope.members(dimension.name)
        result = await info.context.engine.members(dimension.name, limit=limit, offset=offset, where=where)
        return [Member(record[identifier], record) for record in result.records()]

    return _annotate(resolve, list[member_type], info=Info, limit=int, offset=int)


def member_metrics(registry: Registry, dimension: Dimension, values_type: type, where_type: type) -> Callable[..., Any]:
    identifier = DimensionRef(dimension.name, dimension.attributes[0].name)

    async def resolve(root: Member, info: Info, where: Any = None, timezone: str = "UTC") -> Any:
        info.context.require("viewer")
        selection = metric_selection(info, registry, own_fields(info))
        if not selection.metrics:
            raise InvalidRequest("select at least one metric under metrics")
        condition, time_range = convert_where(registry, where)
        key = MemberKey(
            identifier, root.identifier, tuple(selection.metrics), condition, time_range, timezone, info.context.scope
        )
        return await info.context.members.load(key)

    return _annotate(resolve, Optional[values_type], info=Info, where=Optional[where_type], timezone=TimeZone)
