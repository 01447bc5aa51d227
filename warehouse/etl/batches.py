"""Changed source rows as Arrow batches: natively from SQLite (ADBC), through the driver elsewhere.

SQLite is read by the ADBC SQLite driver, in C, some ten times faster than
through Python's ``sqlite3``. That driver types each result column from the
values of its first batch and stops at a value of another type, while SQLite
is dynamically typed. So each column is guarded in SQL: a value of the type
its contract allows is passed on (integral reals become integers, booleans
0/1), any other becomes NULL and ``_guard`` names the column, for the parser
to report with the raw value read again by ``rowid``. A first row of typed
constants, dropped on arrival, fixes the column types even when the first
batch holds only NULLs.

Other sources (PostgreSQL, typed) are read through SQLAlchemy's streaming
cursor and converted column by column; JSON arrives as text.
"""

from __future__ import annotations

import functools
from collections.abc import Generator, Iterator
from contextlib import closing
from datetime import datetime
from typing import Any
from urllib.parse import quote

import adbc_driver_sqlite.dbapi as adbc_sqlite
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from warehouse.etl.extract import LATE_COMMIT_OVERLAP, Columns, changed_rows, read_changed
from warehouse.etl.parse import GUARD, RawBatch
from warehouse.etl.prefetch import prefetched

_ROWID = "_rowid"


def _guarded(raw: sa.ColumnClause[Any], kind: sa.types.TypeEngine[Any]) -> tuple[sa.ColumnElement[Any], Any]:
    """The column's value where SQLite holds one of the contract's type, else NULL; and a constant of that type."""
    typeof = sa.func.typeof(raw)
    number = (typeof == "integer") | (typeof == "real")
    if isinstance(kind, sa.Boolean):
        return sa.case((number & ((raw == 0) | (raw == 1)), sa.cast(raw, sa.Integer))), 0
    if isinstance(kind, sa.Integer):
        integral = (typeof == "real") & (raw == sa.cast(raw, sa.Integer))
        return sa.case((typeof == "integer", raw), (integral, sa.cast(raw, sa.Integer))), 0
    if isinstance(kind, sa.Float):
        return sa.case((number, sa.cast(raw, sa.Float))), 0.5
    return sa.case((typeof == "text", raw)), ""


def _sqlite_query(table: sa.Table, since: datetime | None, nullable: bool) -> sa.CompoundSelect:
    guards: dict[str, tuple[sa.ColumnElement[Any], Any]] = {}

    def columns(raw: sa.TableClause) -> list[sa.ColumnElement[Any]]:
        for column in table.columns:
            guards[column.name] = _guarded(raw.c[column.name], column.type)
        failed = [(sa.func.typeof(raw.c[name]) != "null") & guarded.is_(None) for name, (guarded, _) in guards.items()]
        guard = sa.case(*((condition, sa.literal(name)) for condition, name in zip(failed, guards, strict=True)))
        return [
            *(guarded.label(name) for name, (guarded, _) in guards.items()),
            guard.label(GUARD),
            sa.literal_column("rowid").label(_ROWID),
        ]

    queries = changed_rows(table, since, nullable, columns)
    first = sa.select(
        *(sa.literal(constant).label(name) for name, (_, constant) in guards.items()),
        sa.literal("").label(GUARD),
        sa.literal(0).label(_ROWID),
    )
    return sa.union_all(first, *queries)


_DIALECT = sqlite.dialect()


@functools.cache
def _compiled(table: sa.Table, incremental: bool, nullable: bool) -> sa.engine.Compiled:
    """The guarded query, compiled once per process: building and compiling it costs more than a quiet run."""
    since = datetime(1970, 1, 1) if incremental else None  # a placeholder: the run binds its watermark
    return _sqlite_query(table, since, nullable).compile(dialect=_DIALECT)


def _adbc_statement(table: sa.Table, since: datetime | None, nullable: bool) -> tuple[str, list[Any]]:
    """The query's SQL and its positional parameters, processed by their types as SQLAlchemy would."""
    dialect = _DIALECT
    compiled = _compiled(table, since is not None, nullable)
    cutoff = None if since is None else since - LATE_COMMIT_OVERLAP
    params = compiled.construct_params({"since": cutoff, "prefilter": cutoff} if cutoff else None)
    values = []
    for name in compiled.positiontup or ():  # type: ignore[attr-defined]
        processor = compiled.binds[name].type.bind_processor(dialect)  # type: ignore[attr-defined]
        values.append(processor(params[name]) if processor else params[name])
    return compiled.string, values


def _sqlite_uri(connection: sa.Connection) -> str:
    database = connection.engine.url.database or ""
    return f"file:{quote(database.removeprefix('file:'))}?mode=ro"


def sqlite_batches(
    connection: sa.Connection, table: sa.Table, since: datetime | None, *, nullable: bool, batch_rows: int
) -> Generator[RawBatch, None, None]:
    """Read by ADBC in a thread of its own, a batch ahead; ``raw_row`` reads through ``connection``."""
    raw_table = sa.table(table.name, *(sa.column(column.name) for column in table.columns))
    by_rowid = sa.select(raw_table).where(sa.literal_column("rowid") == sa.bindparam("rowid"))

    def raw_row(arrow: pa.Table) -> Any:
        rowids = arrow.column(_ROWID)
        return lambda index: dict(connection.execute(by_rowid, {"rowid": rowids[index].as_py()}).mappings().one())

    sql, params = _adbc_statement(table, since, nullable)
    uri = _sqlite_uri(connection)

    def read() -> Iterator[pa.Table]:
        with adbc_sqlite.connect(uri) as adbc, adbc.cursor() as cursor:
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
            cursor.execute(sql, params)
            first = True
            for record_batch in cursor.fetch_record_batch():
                arrow = pa.Table.from_batches([record_batch.slice(1) if first else record_batch])
                first = False
                if arrow.num_rows:
                    yield arrow

    with closing(prefetched(read)) as arrows:
        for arrow in arrows:
            yield RawBatch(arrow, raw_row(arrow))


def _json_as_text(table: sa.Table) -> Columns:
    """Selects JSON columns as text, which PostgreSQL drivers would otherwise parse into Python objects."""

    def columns(raw: sa.TableClause) -> list[sa.ColumnElement[Any]]:
        json = {column.name for column in table.columns if isinstance(column.type, sa.JSON)}
        return [sa.cast(column, sa.Text).label(column.name) if column.name in json else column for column in raw.c]

    return columns


def driver_batches(
    connection: sa.Connection, table: sa.Table, since: datetime | None, *, nullable: bool, batch_rows: int
) -> Generator[RawBatch, None, None]:
    columns = _json_as_text(table)
    for rows in read_changed(connection, table, since, nullable=nullable, batch_rows=batch_rows, columns=columns):
        arrow = pa.table({column.name: pa.array([row[column.name] for row in rows]) for column in table.columns})
        yield RawBatch(arrow, rows.__getitem__)


def read_batches(
    connection: sa.Connection, table: sa.Table, since: datetime | None, *, nullable: bool, batch_rows: int
) -> Generator[RawBatch, None, None]:
    """The rows of ``table`` changed since the watermark, in batches of at most ``batch_rows``."""
    read = sqlite_batches if connection.dialect.name == "sqlite" else driver_batches
    return read(connection, table, since, nullable=nullable, batch_rows=batch_rows)
