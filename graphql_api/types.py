"""The static parts of the schema: pages, the catalog, the generic table, and the value holders."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.scalars import JSON

from metrics.results import QueryResult


@dataclass
class Row:
    """One result row; generated fields read their value by attribute key or metric name."""

    values: dict[str, Any]


@dataclass
class ResultRows:
    """What ``rows`` resolves to: the result by column, which ``execution.RowsExecutionContext`` projects
    straight into response rows; iterating gives ``Row`` objects for graphql-core's ordinary execution."""

    result: QueryResult

    def __iter__(self) -> Iterator[Row]:
        return (Row(record) for record in self.result.records())


class TableRows(list[list[Any]]):
    """``table``'s rows (JSON arrays), marked so the execution context completes them as one list."""


@dataclass
class Member:
    """A dimension member (a tier, an agent, ...), with attribute values keyed like rows (``tier.name``)."""

    identifier: Any
    values: dict[str, Any]


@strawberry.type
class PageInfo:
    has_next_page: bool


@strawberry.type(description="A metric of the registry.")
class CatalogMetric:
    name: str
    graphql_name: str
    label: str
    description: str
    kind: str = strawberry.field(description="count, count_distinct, sum, avg, min, max, percentile, ratio or derived")
    type: str = strawberry.field(description="integer or float")
    unit: str | None
    format: str | None
    facts: list[str]
    dimensions: list[str] = strawberry.field(description="Dimensions it can be sliced and filtered by.")


@strawberry.type
class CatalogAttribute:
    name: str
    graphql_name: str
    label: str
    type: str


@strawberry.type(description="A dimension of the registry.")
class CatalogDimension:
    name: str
    graphql_name: str
    label: str
    description: str
    kind: str = strawberry.field(description="time, table (attributes behind a key) or value (one column)")
    attributes: list[CatalogAttribute]


@strawberry.type
class Catalog:
    metrics: list[CatalogMetric]
    dimensions: list[CatalogDimension]


@strawberry.type
class TableColumn:
    name: str
    type: str


@strawberry.type(description="A result as a table, for tools that build queries at run time.")
class Table:
    columns: list[TableColumn]
    rows: list[JSON]
    total_count: int


@strawberry.type
class Explanation:
    sql: str
    plan: str
    cache: str = strawberry.field(
        description="hit: the result cache holds this answer now, so running it would not query the warehouse; "
        "miss: it would run; off: the cache is off, or the warehouse has no ETL run to key it by."
    )
