"""Upserts by natural key through a staging table, the same SQL on every warehouse.

Rows are bulk-copied into a temporary table (the one backend-specific step:
Arrow on DuckDB, COPY on PostgreSQL), rows no newer than the stored ones are
dropped, and the rest replace their stored version (delete, then insert). A
source row updated after it was loaded therefore replaces its fact; it never
adds a second one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

_ARROW_TYPES: dict[type[sa.types.TypeEngine[Any]], pa.DataType] = {
    sa.Text: pa.string(),
    sa.BigInteger: pa.int64(),
    sa.Integer: pa.int32(),
    sa.Double: pa.float64(),
    sa.Boolean: pa.bool_(),
    sa.DateTime: pa.timestamp("us"),
}


def _arrow_type(column: sa.Column[Any]) -> pa.DataType:
    for sql_type, arrow_type in _ARROW_TYPES.items():
        if isinstance(column.type, sql_type):
            return arrow_type
    raise TypeError(f"no Arrow type for {column.table.name}.{column.name} ({column.type})")


def _stage_duckdb(connection: sa.Connection, stage: sa.Table, rows: list[dict[str, Any]]) -> None:
    schema = pa.schema([(column.name, _arrow_type(column)) for column in stage.columns])
    view = f"{stage.name}_arrow"
    driver = connection.connection.driver_connection
    driver.register(view, pa.Table.from_pylist(rows, schema=schema))
    try:
        columns = [column.name for column in stage.columns]
        connection.execute(
            sa.insert(stage).from_select(columns, sa.select(*map(sa.column, columns)).select_from(sa.table(view)))
        )
    finally:
        driver.unregister(view)


def _stage_postgresql(connection: sa.Connection, stage: sa.Table, rows: list[dict[str, Any]]) -> None:
    names = [column.name for column in stage.columns]
    with connection.connection.driver_connection.cursor() as cursor:
        with cursor.copy(f"COPY {stage.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[name] for name in names])


_STAGERS: dict[str, Callable[[sa.Connection, sa.Table, list[dict[str, Any]]], None]] = {
    "duckdb": _stage_duckdb,
    "postgresql": _stage_postgresql,
}


@dataclass
class MergeCount:
    inserted: int = 0
    updated: int = 0

    def __iadd__(self, other: MergeCount) -> MergeCount:
        self.inserted += other.inserted
        self.updated += other.updated
        return self


@dataclass(frozen=True)
class Children:
    """Rows owned by a parent row (a trace's practices): replaced whenever the parent is."""

    table: sa.Table
    parent_key: str


class Merger:
    """Upserts into one target table within the caller's transaction, through reusable staging tables."""

    def __init__(self, connection: sa.Connection, target: sa.Table, natural_key: str, children: Children | None = None):
        self._connection = connection
        self._target = target
        self._key = natural_key
        self._stage_rows = _STAGERS[connection.dialect.name]
        self._staging = sa.MetaData()
        self._stage = self._create_stage(target)
        self._child_stage = (children, self._create_stage(children.table)) if children else None

    def _create_stage(self, table: sa.Table) -> sa.Table:
        stage = sa.Table(
            f"stage_{table.name}",
            self._staging,
            *(sa.Column(column.name, column.type) for column in table.columns),
            prefixes=["TEMPORARY"],
        )
        stage.create(self._connection, checkfirst=False)
        return stage

    def merge(self, rows: list[dict[str, Any]], child_rows: list[dict[str, Any]] | None = None) -> MergeCount:
        """Apply a batch of rows (and the children of those rows); rows not newer than stored ones are ignored."""
        if not rows:
            return MergeCount()
        execute = self._connection.execute
        target, stage, key = self._target, self._stage, self._key
        execute(sa.delete(stage))
        self._stage_rows(self._connection, stage, rows)
        stored = sa.select(target.c[key]).where(
            target.c[key] == stage.c[key], target.c.source_updated_at >= stage.c.source_updated_at
        )
        execute(sa.delete(stage).where(stored.exists()))
        staged = execute(sa.select(sa.func.count()).select_from(stage)).scalar_one()
        updated = execute(
            sa.select(sa.func.count()).select_from(stage.join(target, target.c[key] == stage.c[key]))
        ).scalar_one()
        changed = sa.select(stage.c[key])
        if self._child_stage is not None:
            self._merge_children(*self._child_stage, child_rows or [], changed)
        execute(sa.delete(target).where(target.c[key].in_(changed)))
        columns = [column.name for column in stage.columns]
        execute(sa.insert(target).from_select(columns, sa.select(*stage.c)))
        return MergeCount(inserted=staged - updated, updated=updated)

    def _merge_children(
        self, children: Children, stage: sa.Table, child_rows: list[dict[str, Any]], changed: sa.Select[Any]
    ) -> None:
        execute = self._connection.execute
        table, parent = children.table, children.parent_key
        execute(sa.delete(table).where(table.c[parent].in_(changed)))
        if not child_rows:
            return
        execute(sa.delete(stage))
        self._stage_rows(self._connection, stage, child_rows)
        columns = [column.name for column in stage.columns]
        execute(sa.insert(table).from_select(columns, sa.select(*stage.c).where(stage.c[parent].in_(changed))))
