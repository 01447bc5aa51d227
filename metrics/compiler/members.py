"""The members of a table dimension with their current attributes, for navigation (``agents { ... }``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from metrics.compiler.fact_query import compare, label, sql_value
from metrics.compiler.request import And, Filter, Not, Or
from metrics.compiler.to_sql import OutputColumn
from metrics.model import ROW_COUNT, Dimension


def _condition(where: Filter, table: Any, dimension: Dimension) -> Any:
    """A filter on the dimension's own attributes (a caller's row scope), over the member table."""
    if isinstance(where, (And, Or)):
        parts = [_condition(item, table, dimension) for item in where.items]
        return sa.and_(*parts) if isinstance(where, And) else sa.or_(*parts)
    if isinstance(where, Not):
        return sa.not_(sa.func.coalesce(_condition(where.item, table, dimension), sa.false()))
    attribute = dimension.attribute(where.ref.attribute or "")
    assert attribute is not None  # policies are validated against the registry
    return compare(table.c[attribute.column], where.op, sql_value(where.value))


def compile_members(
    dimension: Dimension, *, as_of: datetime, limit: int, offset: int, where: Filter | None = None
) -> tuple[sa.Select[Any], tuple[OutputColumn, ...]]:
    """One row per member: type-2 dimensions show the version valid at ``as_of`` (naive UTC); ``where`` keeps
    the members a caller's scope admits."""
    assert dimension.table is not None and dimension.key is not None
    names = {a.column for a in dimension.attributes}
    if dimension.history is not None:
        names |= {dimension.history.valid_from, dimension.history.valid_to}
    table = sa.table(dimension.table, *(sa.column(n) for n in sorted(names))).alias(dimension.name)
    keys = [f"{dimension.name}.{a.name}" for a in dimension.attributes]
    statement = sa.select(
        *(table.c[a.column].label(label(key)) for a, key in zip(dimension.attributes, keys, strict=True))
    )
    if dimension.history is not None:
        moment = sa.bindparam("as_of", as_of, sa.DateTime())
        statement = statement.where(
            table.c[dimension.history.valid_from] <= moment, moment < table.c[dimension.history.valid_to]
        )
    if where is not None:
        statement = statement.where(_condition(where, table, dimension))
    identifier = table.c[dimension.attributes[0].column]
    statement = statement.add_columns(sa.func.count().over().label(ROW_COUNT)).order_by(identifier.asc().nulls_last())
    statement = statement.limit(limit).offset(offset)
    columns = tuple(
        OutputColumn(key, label(key), a.type, False) for a, key in zip(dimension.attributes, keys, strict=True)
    )
    return statement, columns
