"""Reading the operational source: contract check and the queries of the rows changed since the watermark.

Rows are read by ``updated_at`` from the previous watermark minus an overlap,
so a row that commits late with an older ``updated_at`` is still seen; rows
read twice are recognised downstream by their unchanged ``updated_at``.

On SQLite the exact comparison must normalise the text, which no index can
serve, so a conservative prefilter on the raw value comes with it: every form
sources.md allows starts with the UTC date, so text at or after the date one
day before the cut-off holds every row the exact comparison keeps, and an
index on ``updated_at`` (the application's to create) serves it. Where the
source lets ``updated_at`` be NULL, NULL is read too, so the parser reports
it. A value that is no timestamp and sorts before that date (a number, or
text such as ``03/11/2025``) is reported by a full load but not read again
by incremental runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from warehouse.connections import display_url
from warehouse.errors import SourceContractError, SourceUnavailable
from warehouse.source import SOURCE_TABLES

LATE_COMMIT_OVERLAP = timedelta(minutes=5)
BATCH_ROWS = 100_000
"""Rows per batch: what the ETL holds in memory at once, per table."""


class comparable_timestamp(FunctionElement[Any]):
    """A source timestamp in a form that compares correctly with a watermark.

    SQLite keeps ISO-8601 text whose forms ("T", "Z", offsets) do not sort as
    text, so it is normalised there; PostgreSQL compares ``timestamptz`` as is.
    """

    inherit_cache = True
    name = "comparable_timestamp"


@compiles(comparable_timestamp)
def _comparable_timestamp_default(element: comparable_timestamp, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(comparable_timestamp, "sqlite")
def _comparable_timestamp_sqlite(element: comparable_timestamp, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m-%d %H:%M:%f', {compiler.process(element.clauses, **kw)})"


class WatermarkParam(sa.types.TypeDecorator[datetime]):
    """Binds a naive UTC watermark the way ``comparable_timestamp`` renders on each backend."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        as_text = dialect.name == "sqlite"
        return dialect.type_descriptor(sa.String() if as_text else sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return value.replace(tzinfo=UTC)


class PrefilterParam(WatermarkParam):
    """Binds the prefilter's bound: on SQLite the date (``YYYY-MM-DD``) one day earlier, as text; elsewhere as is."""

    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is not None and dialect.name == "sqlite":
            return (value - timedelta(days=1)).strftime("%Y-%m-%d")
        return super().process_bind_param(value, dialect)


def check_contract(engine: sa.Engine) -> frozenset[str]:
    """Fail before anything is written when tables or columns of sources.md are missing, naming all of them.

    Returns the tables whose ``updated_at`` the source lets be NULL (sources.md
    says it never is): only those need a look for NULL stamps.
    """
    try:
        inspector = sa.inspect(engine)
        present = set(inspector.get_table_names())
        problems: list[str] = []
        nullable: set[str] = set()
        for table in SOURCE_TABLES:
            if table.name not in present:
                problems.append(f"table {table.name} is missing")
                continue
            reflected = {column["name"]: column for column in inspector.get_columns(table.name)}
            columns = set(reflected)
            if reflected.get("updated_at", {}).get("nullable", True):
                nullable.add(table.name)
            problems.extend(
                f"table {table.name} has no column {column.name}"
                for column in table.columns
                if column.name not in columns
            )
    except sa.exc.DBAPIError as exc:
        raise SourceUnavailable(
            f"cannot read the source database {display_url(engine.url)}: {str(exc.orig).strip()}. Check that it is "
            "running and that the URL names the operational database."
        ) from None
    if problems:
        raise SourceContractError(problems)
    return frozenset(nullable)


Columns = Callable[[sa.TableClause], list[sa.ColumnElement[Any]]]


def _raw_columns(raw: sa.TableClause) -> list[sa.ColumnElement[Any]]:
    return list(raw.c)


def changed_rows(
    table: sa.Table, since: datetime | None, nullable: bool, columns: Columns = _raw_columns
) -> list[sa.Select[Any]]:
    """The queries of the source rows changed since the watermark, as untyped columns: values are parsed downstream.

    ``nullable``: the source lets ``updated_at`` be NULL, so such rows are read too, by a second query, for the
    parser to report. ``columns`` picks what each query selects from the untyped table.
    """
    raw = sa.table(table.name, *(sa.column(column.name) for column in table.columns))
    rows = sa.select(*columns(raw))
    if since is None:
        return [rows]
    cutoff = since - LATE_COMMIT_OVERLAP
    updated = comparable_timestamp(raw.c.updated_at)
    changed = rows.where(
        raw.c.updated_at >= sa.bindparam("prefilter", cutoff, PrefilterParam),
        # NULL means the text did not parse: read the row so the parser reports it.
        sa.or_(updated >= sa.bindparam("since", cutoff, WatermarkParam), updated.is_(None)),
    )
    if not nullable:
        return [changed]
    # NULL fails the prefilter; a query of its own keeps both parts index-served (an OR would not on SQLite).
    return [changed, rows.where(raw.c.updated_at.is_(None))]


def _changed(
    table: sa.Table, since: datetime | None, nullable: bool, columns: Columns = _raw_columns
) -> sa.Select[Any] | sa.CompoundSelect:
    queries = changed_rows(table, since, nullable, columns)
    return queries[0] if len(queries) == 1 else sa.union_all(*queries)


def count_changed(connection: sa.Connection, table: sa.Table, since: datetime | None, *, nullable: bool) -> int:
    changed = _changed(table, since, nullable).subquery()
    return connection.execute(sa.select(sa.func.count()).select_from(changed)).scalar_one()


def read_changed(
    connection: sa.Connection,
    table: sa.Table,
    since: datetime | None,
    *,
    nullable: bool,
    batch_rows: int = BATCH_ROWS,
    columns: Columns = _raw_columns,
) -> Iterator[list[dict[str, Any]]]:
    """Batches of raw source rows changed since the watermark, through the SQLAlchemy driver (``nullable``: see
    ``changed_rows``). The ETL reads PostgreSQL sources this way; SQLite ones through ``sqlite_batches``."""
    changed = _changed(table, since, nullable, columns)
    result = connection.execution_options(stream_results=True, yield_per=batch_rows).execute(changed)
    names = tuple(result.keys())
    for partition in result.partitions(batch_rows):
        yield [dict(zip(names, row, strict=True)) for row in partition]
