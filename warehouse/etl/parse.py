"""Raw source batches into contract-typed Arrow, checked column by column in one DuckDB relation.

Every value is cast to its contract type by DuckDB expressions built from
the contract's columns, never from SQL text (ISO-8601 text or
``timestamptz`` into naive UTC, 0/1 or booleans into booleans, JSON checked
for validity); a value that does not cast, or a NULL where sources.md says
the column is never NULL, marks its row. The first marked row of a batch is
re-checked by ``warehouse.etl.rows.parse_row`` on its raw values, so the
error names table, key, column and value exactly as the driver returned
them; nothing was written by then that the run's transaction would keep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from duckdb import (
    CaseExpression,
    CoalesceOperator,
    ColumnExpression,
    ConstantExpression,
    FunctionExpression,
    StarExpression,
    sqltypes,
)

from warehouse.errors import BadSourceValue
from warehouse.etl.rows import parse_row

GUARD = "_guard"
"""A raw batch's column naming the first column whose value the reader had to drop, or NULL (``batches``)."""
RawRow = Callable[[int], dict[str, Any]]


@dataclass(frozen=True)
class RawBatch:
    """Source rows as read: Arrow columns plus, for the error path, the raw values of one row by its index."""

    arrow: pa.Table
    raw_row: RawRow


def _parsed(column: sa.Column[Any]) -> duckdb.Expression:
    """The column's raw value cast to its contract type, NULL where it does not cast."""
    raw = ColumnExpression(column.name)
    kind = column.type
    if isinstance(kind, sa.DateTime):
        return raw.try_cast(sqltypes.TIMESTAMP_TZ).cast(sqltypes.TIMESTAMP)
    if isinstance(kind, sa.Boolean):
        number = raw.try_cast(sqltypes.INTEGER)
        return CaseExpression(number == ConstantExpression(1), ConstantExpression(True)).when(
            number == ConstantExpression(0), ConstantExpression(False)
        )
    if isinstance(kind, sa.Integer):
        return raw.try_cast(sqltypes.BIGINT)
    if isinstance(kind, sa.Float):
        return raw.try_cast(sqltypes.DOUBLE)
    if isinstance(kind, sa.JSON):
        text = raw.cast(sqltypes.VARCHAR)
        return CaseExpression(FunctionExpression("json_valid", text), text)
    return raw.try_cast(sqltypes.VARCHAR)


def _parsed_name(column: sa.Column[Any]) -> str:
    return f"__{column.name}"


def _problem(column: sa.Column[Any]) -> duckdb.Expression:
    """True where the column's value is bad: it did not cast, or it is NULL and may not be."""
    failed = ColumnExpression(_parsed_name(column)).isnull()
    if column.nullable:
        return failed & ColumnExpression(column.name).isnotnull()
    return failed


class Parser:
    """Parses and checks the raw batches of one source table in ``scratch``, an in-memory DuckDB set to UTC."""

    def __init__(self, table: sa.Table, scratch: duckdb.DuckDBPyConnection) -> None:
        self._table = table
        self._key = table.primary_key.columns[0].name
        self._db = scratch
        self._parsed = [StarExpression(), *(_parsed(column).alias(_parsed_name(column)) for column in table.columns)]
        first, *rest = table.columns
        problem = CaseExpression(_problem(first), ConstantExpression(first.name))
        for column in rest:
            problem = problem.when(_problem(column), ConstantExpression(column.name))
        self._checked = [
            *(ColumnExpression(_parsed_name(column)).alias(column.name) for column in table.columns),
            CoalesceOperator(ColumnExpression(GUARD), problem).alias("_problem"),
        ]

    def parse(self, batch: RawBatch) -> pa.Table:
        """The batch in contract types; raises ``BadSourceValue`` for its first bad row."""
        raw = batch.arrow
        if GUARD not in raw.column_names:
            raw = raw.append_column(GUARD, pa.nulls(raw.num_rows, pa.string()))
        parsed = self._db.from_arrow(raw).select(*self._parsed).select(*self._checked).to_arrow_table()
        problem = parsed.column("_problem")
        if problem.null_count < len(problem):
            self._report(batch, parsed)
        return parsed.drop_columns(["_problem"])

    def _report(self, batch: RawBatch, parsed: pa.Table) -> None:
        index = pc.indices_nonzero(pc.is_valid(parsed.column("_problem")))[0].as_py()
        row = batch.raw_row(index)
        parse_row(self._table, self._key, row)  # raises with the raw value in the common case
        column = parsed.column("_problem")[index].as_py()
        raise BadSourceValue(self._table.name, row[self._key], column, row[column], f"a valid {column} value")
