"""The members of a table dimension with their current attributes, for navigation (``agents { ... }``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from metrics.compiler.to_sql import OutputColumn, label
from metrics.model import ROW_COUNT, Dimension


def compile_members(
    dimension: Dimension, *, as_of: datetime, limit: int, offset: int
) -> tuple[sa.Select[Any], tuple[OutputColumn, ...]]:
    """One row per member: type-2 dimensions show the version valid at ``as_of`` (naive UTC)."""
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
    identifier = table.c[dimension.attributes[0].column]
    statement = statement.add_columns(sa.func.count().over().label(ROW_COUNT)).order_by(identifier.asc().nulls_last())
    statement = statement.limit(limit).offset(offset)
    columns = tuple(
        OutputColumn(key, label(key), a.type, False) for a, key in zip(dimension.attributes, keys, strict=True)
    )
    return statement, columns
