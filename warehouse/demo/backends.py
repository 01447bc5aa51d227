"""Bulk writes per source database: SQLite through ``executemany``, PostgreSQL through ``COPY``.

A backend is configuration: its driver, the settings each new connection
gets, how values are spelled, and two bulk operations. Everything runs on the
DBAPI connection under the caller's SQLAlchemy transaction, so a step is
written whole or not at all. SQLite skips its journal and fsyncs: a demo file
that a crash leaves half-written is simply generated again, and the speed-up
is what makes scale 500 practical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from psycopg import sql

from warehouse.demo import encoding
from warehouse.demo.batch import Batch


def _sqlite_insert(connection: sa.Connection, batch: Batch) -> None:
    compiled = sa.insert(batch.table).compile(dialect=connection.dialect, column_keys=list(batch.columns))
    rows = encoding.rows(batch, compiled.positiontup or [], encoding.SQLITE)
    connection.connection.driver_connection.executemany(str(compiled), rows)  # type: ignore[union-attr]


def _sqlite_update(connection: sa.Connection, batch: Batch, key: str) -> None:
    table = batch.table
    changed = [name for name in batch.columns if name != key]
    statement = (
        sa.update(table)
        .where(table.c[key] == sa.bindparam(f"new_{key}"))
        .values({name: sa.bindparam(f"new_{name}") for name in changed})
    )
    compiled = statement.compile(dialect=connection.dialect)
    order = [name.removeprefix("new_") for name in compiled.positiontup or []]
    rows = encoding.rows(batch, order, encoding.SQLITE)
    connection.connection.driver_connection.executemany(str(compiled), rows)  # type: ignore[union-attr]


def _copy(connection: sa.Connection, target: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(target), sql.SQL(", ").join(sql.Identifier(name) for name in columns)
    )
    with connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(row)


def _postgresql_insert(connection: sa.Connection, batch: Batch) -> None:
    columns = list(batch.columns)
    _copy(connection, batch.table.name, columns, encoding.rows(batch, columns, encoding.POSTGRESQL))


def _postgresql_update(connection: sa.Connection, batch: Batch, key: str) -> None:
    """COPY the new values into a scratch table, then one ``UPDATE ... FROM`` (row-by-row updates crawl)."""
    table, columns = batch.table, list(batch.columns)
    scratch = f"demo_changes_{table.name}"
    with connection.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(
            sql.SQL("CREATE TEMPORARY TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(
                sql.Identifier(scratch),
                sql.SQL(", ").join(sql.Identifier(name) for name in columns),
                sql.Identifier(table.name),
            )
        )
    _copy(connection, scratch, columns, encoding.rows(batch, columns, encoding.POSTGRESQL))
    changes = sa.table(scratch, *(sa.column(name) for name in columns))
    connection.execute(
        sa.update(table)
        .where(table.c[key] == changes.c[key])
        .values({name: changes.c[name] for name in columns if name != key})
    )
    with connection.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(scratch)))


@dataclass(frozen=True)
class Backend:
    driver: str
    session: tuple[str, ...]
    insert: Callable[[sa.Connection, Batch], None]
    update: Callable[[sa.Connection, Batch, str], None]


BACKENDS: dict[str, Backend] = {
    "sqlite": Backend(
        driver="pysqlite",
        session=(
            "PRAGMA journal_mode = OFF",
            "PRAGMA synchronous = OFF",
            "PRAGMA temp_store = MEMORY",
            "PRAGMA cache_size = -131072",
        ),
        insert=_sqlite_insert,
        update=_sqlite_update,
    ),
    "postgresql": Backend(
        driver="psycopg",
        session=("SET synchronous_commit = off",),
        insert=_postgresql_insert,
        update=_postgresql_update,
    ),
}


def open_source(url: str) -> tuple[sa.Engine, Backend]:
    """An engine on the demo source with its backend; PostgreSQL always through psycopg (for COPY)."""
    parsed = sa.make_url(url)
    backend = BACKENDS.get(parsed.get_backend_name())
    if backend is None:
        raise ValueError(f"the demo source must be sqlite:///PATH or postgresql+psycopg://..., not {url!r}.")
    engine = sa.create_engine(
        parsed.set(drivername=f"{parsed.get_backend_name()}+{backend.driver}"), poolclass=sa.pool.NullPool
    )

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for statement in backend.session:
            cursor.execute(statement)
        cursor.close()
        dbapi_connection.commit()

    return engine, backend
