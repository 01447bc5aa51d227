"""Raw source batches into contract-typed Arrow, checked column by column in one DuckDB statement.

Every value is cast to its contract type in SQL (ISO-8601 text or
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


def _cast(column: sa.Column[Any]) -> str:
    name = f'"{column.name}"'
    kind = column.type
    if isinstance(kind, sa.DateTime):
        return f"TRY_CAST({name} AS TIMESTAMPTZ)::TIMESTAMP"
    if isinstance(kind, sa.Boolean):
        return f"CASE TRY_CAST({name} AS INTEGER) WHEN 1 THEN TRUE WHEN 0 THEN FALSE END"
    if isinstance(kind, sa.Integer):
        return f"TRY_CAST({name} AS BIGINT)"
    if isinstance(kind, sa.Float):
        return f"TRY_CAST({name} AS DOUBLE)"
    if isinstance(kind, sa.JSON):
        return f"CASE WHEN json_valid({name}::VARCHAR) THEN {name}::VARCHAR END"
    return f"TRY_CAST({name} AS VARCHAR)"


def _problem(column: sa.Column[Any]) -> str:
    """True where the column's value is bad: it did not cast, or it is NULL and may not be."""
    parsed, raw = f'"__{column.name}"', f'"{column.name}"'
    if column.nullable:
        return f"({parsed} IS NULL AND {raw} IS NOT NULL)"
    return f"{parsed} IS NULL"


class Parser:
    """Parses and checks the raw batches of one source table in ``scratch``, an in-memory DuckDB set to UTC."""

    def __init__(self, table: sa.Table, scratch: duckdb.DuckDBPyConnection) -> None:
        self._table = table
        self._key = table.primary_key.columns[0].name
        self._db = scratch
        parsed = ", ".join(f'{_cast(column)} AS "__{column.name}"' for column in table.columns)
        problems = " ".join(f"WHEN {_problem(column)} THEN '{column.name}'" for column in table.columns)
        columns = ", ".join(f'"__{column.name}" AS "{column.name}"' for column in table.columns)
        self._sql = (
            f"SELECT {columns}, coalesce({GUARD}, CASE {problems} END) AS _problem FROM (SELECT *, {parsed} FROM raw)"
        )

    def parse(self, batch: RawBatch) -> pa.Table:
        """The batch in contract types; raises ``BadSourceValue`` for its first bad row."""
        raw = batch.arrow
        if GUARD not in raw.column_names:
            raw = raw.append_column(GUARD, pa.nulls(raw.num_rows, pa.string()))
        self._db.register("raw", raw)
        try:
            parsed = self._db.sql(self._sql).to_arrow_table()
        finally:
            self._db.unregister("raw")
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
