"""Set-based upserts through staging tables, the same SQL on every warehouse.

A batch is bulk-copied into a temporary table (the one backend-specific step:
Arrow on DuckDB, COPY on PostgreSQL), rows no newer than the stored ones are
dropped, and the rest replace their stored version. A source row updated
after it was loaded therefore replaces its row; it never adds a second one.
Member keys are resolved by joins against the dimensions, after the members
the batch names for the first time were inserted as inferred members.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from warehouse import schema
from warehouse.etl.members import Dimension, infer_members
from warehouse.etl.pgcopy import binary_copy
from warehouse.etl.touched import TouchedDays

Stager = Callable[[sa.Connection, sa.Table, pa.Table], None]


def _stage_duckdb(connection: sa.Connection, stage: sa.Table, rows: pa.Table) -> None:
    view = f"{stage.name}_arrow"
    driver = connection.connection.driver_connection
    driver.register(view, rows)
    try:
        columns = [column.name for column in stage.columns]
        connection.execute(
            sa.insert(stage).from_select(columns, sa.select(*map(sa.column, columns)).select_from(sa.table(view)))
        )
    finally:
        driver.unregister(view)


def _stage_postgresql(connection: sa.Connection, stage: sa.Table, rows: pa.Table) -> None:
    quote = connection.dialect.identifier_preparer.quote
    names = ", ".join(quote(column.name) for column in stage.columns)
    with connection.connection.driver_connection.cursor() as cursor:
        with cursor.copy(f"COPY {quote(stage.name)} ({names}) FROM STDIN (FORMAT binary)") as copy:
            copy.write(binary_copy(rows, list(stage.columns)))
        # Temporary tables get no statistics by themselves: without them the planner takes a small batch for a
        # large one and joins it to the whole target by scanning, where an index lookup per staged row is cheaper.
        cursor.execute(f"ANALYZE {quote(stage.name)}")


STAGERS: dict[str, Stager] = {"duckdb": _stage_duckdb, "postgresql": _stage_postgresql}
SESSION_SETUP: dict[str, str] = {"duckdb": "SET enable_progress_bar = false"}
"""Per backend, what the loading session needs: DuckDB would draw progress bars on stderr for long merges."""


@dataclass
class MergeCount:
    inserted: int = 0
    updated: int = 0

    def __iadd__(self, other: MergeCount) -> MergeCount:
        self.inserted += other.inserted
        self.updated += other.updated
        return self


@dataclass(frozen=True)
class MemberColumn:
    """A staged column holding a member's natural key, stored in the target as the member's surrogate key."""

    name: str
    dimension: Dimension


class Staging:
    """Temporary tables of one run, created on first use, emptied before each batch (or each table, for history)."""

    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self._stage = STAGERS[connection.dialect.name]
        self._metadata = sa.MetaData()
        if connection.dialect.name in SESSION_SETUP:
            connection.exec_driver_sql(SESSION_SETUP[connection.dialect.name])

    def table(self, name: str, columns: list[sa.Column[Any]]) -> sa.Table:
        if name in self._metadata.tables:
            return self._metadata.tables[name]
        stage = sa.Table(name, self._metadata, *columns, prefixes=["TEMPORARY"])
        stage.create(self._connection, checkfirst=False)
        return stage

    def fill(self, stage: sa.Table, rows: pa.Table) -> None:
        self.clear(stage)
        self.append(stage, rows)

    def clear(self, stage: sa.Table) -> None:
        self._connection.execute(sa.delete(stage))

    def append(self, stage: sa.Table, rows: pa.Table) -> None:
        if rows.num_rows:
            self._stage(self._connection, stage, rows)


def stage_columns(target: sa.Table, members: list[MemberColumn]) -> list[sa.Column[Any]]:
    """The target's columns, with member keys staged as their natural keys (text)."""
    natural = {member.name for member in members}
    return [sa.Column(column.name, sa.Text if column.name in natural else column.type) for column in target.columns]


def _drop_not_newer(
    connection: sa.Connection, stage: sa.Table, target: sa.Table, key: str, kept: sa.ColumnElement[bool]
) -> MergeCount:
    """Drop the staged rows no newer than their stored ones (among the target's ``kept`` rows); count the rest."""
    stored = sa.select(target.c[key]).where(
        target.c[key] == stage.c[key], target.c.source_updated_at >= stage.c.source_updated_at, kept
    )
    connection.execute(sa.delete(stage).where(stored.exists()))
    staged = connection.execute(sa.select(sa.func.count()).select_from(stage)).scalar_one()
    updated = connection.execute(
        sa.select(sa.func.count()).select_from(stage.join(target, target.c[key] == stage.c[key])).where(kept)
    ).scalar_one()
    return MergeCount(inserted=staged - updated, updated=updated)


def is_empty(connection: sa.Connection, table: sa.Table) -> bool:
    return not connection.execute(sa.select(sa.exists().select_from(table))).scalar()


def merge_facts(
    connection: sa.Connection,
    stage: sa.Table,
    target: sa.Table,
    key: str,
    members: list[MemberColumn],
    *,
    fresh: bool = False,
    touched: tuple[TouchedDays, str] | None = None,
) -> MergeCount:
    """Replace the target's rows by the staged ones that are newer, resolving member keys; returns the counts.

    ``fresh``: the target held no rows when this table's load began. A run reads each source row once, so then
    no staged row can meet a stored one, and the lookups by key (an index probe per staged row) are skipped.
    ``touched`` (the days seen so far, and the fact's event time column): where the days of the rows replaced and
    inserted are recorded.
    """
    updated = 0
    if not fresh:
        same = target.c[key] == stage.c[key]
        older = target.c.source_updated_at < stage.c.source_updated_at
        if touched is not None:
            days, event_time = touched
            days.record(connection, target.name, sa.select(target.c[event_time]).where(same, older))
        updated = connection.execute(sa.delete(target).where(same, older)).rowcount
        connection.execute(sa.delete(stage).where(sa.select(target.c[key]).where(same).exists()))  # not newer
    staged = connection.execute(sa.select(sa.func.count()).select_from(stage)).scalar_one()
    if not staged:
        return MergeCount()
    if touched is not None:
        days, event_time = touched
        days.record(connection, target.name, sa.select(stage.c[event_time]))
    by_dimension: dict[str, list[MemberColumn]] = {}
    for member in members:
        by_dimension.setdefault(member.dimension.name, []).append(member)
    for group in by_dimension.values():
        infer_members(connection, group[0].dimension, [stage.c[member.name] for member in group])
    rows = resolved(stage, members)
    connection.execute(sa.insert(target).from_select(list(rows.selected_columns.keys()), rows))
    return MergeCount(inserted=staged - updated, updated=updated)


def resolved(stage: sa.Table, members: list[MemberColumn]) -> sa.Select[Any]:
    """The staged fact rows as the target stores them: member keys through the members' current versions."""
    columns: dict[str, sa.ColumnElement[Any]] = {column.name: column for column in stage.columns}
    joined: sa.FromClause = stage
    for member in members:
        current = member.dimension.current.subquery(f"{member.name}_member")
        joined = joined.outerjoin(current, current.c[member.dimension.natural_key] == stage.c[member.name])
        columns[member.name] = current.c[member.dimension.key]
    return sa.select(*(value.label(name) for name, value in columns.items())).select_from(joined)


def merge_members(connection: sa.Connection, stage: sa.Table, dimension: Dimension) -> MergeCount:
    """Type-1 members: update the known ones (inferred ones become real), insert the new ones with new keys."""
    table, natural = dimension.table, dimension.natural_key
    count = _drop_not_newer(connection, stage, table, natural, sa.true())
    if not count.inserted + count.updated:
        return count
    changed = [*dimension.attributes, "is_inferred", "source_updated_at"]
    connection.execute(
        sa.update(table).where(table.c[natural] == stage.c[natural]).values({name: stage.c[name] for name in changed})
    )
    known = sa.select(table.c[natural]).where(table.c[natural] == stage.c[natural])
    new = sa.select(
        dimension.next_keys(stage.c[natural]).label(dimension.key), *(stage.c[name] for name in [natural, *changed])
    ).where(~known.exists())
    connection.execute(sa.insert(table).from_select([dimension.key, natural, *changed], new))
    return count


def replace_children(
    connection: sa.Connection,
    stage: sa.Table,
    table: sa.Table,
    parents: sa.Select[Any],
    parent_rows: sa.FromClause,
    *,
    fresh: bool = False,
) -> None:
    """Replace the children of ``parents`` with the staged ones, copying the parent columns they repeat from
    ``parent_rows`` (the parents as stored: ``resolved``). ``fresh``: no parent was stored before (``merge_facts``)."""
    parent = stage.c[list(parents.selected_columns)[0].name]
    if not fresh:
        connection.execute(sa.delete(table).where(table.c[parent.name].in_(parents)))
    own = {column.name for column in stage.columns}
    columns = [
        stage.c[column.name] if column.name in own else parent_rows.c[column.name].label(column.name)
        for column in table.columns
    ]
    rows = sa.select(*columns).select_from(stage.join(parent_rows, parent_rows.c[parent.name] == parent))
    connection.execute(sa.insert(table).from_select([column.name for column in table.columns], rows))


def merge_history(connection: sa.Connection, stage: sa.Table, dimension: Dimension) -> MergeCount:
    """Type-2 members from staged source rows, one per member, in five set-based statements.

    A changed attribute closes the current version at the source row's
    ``updated_at`` and opens a new one there; a row newer than its version
    with the same attributes only advances ``source_updated_at``; an inferred
    member takes its first real attributes in place (so they hold for all
    earlier time); an unknown member is inserted with a new key, keys given
    in the order of ``updated_at`` then natural key. Rows no newer than their
    current version (the overlap re-reads them) change nothing.
    """
    table, natural, stamp = dimension.table, dimension.natural_key, stage.c.source_updated_at
    count = _drop_not_newer(connection, stage, table, natural, table.c.is_current)
    if not count.inserted + count.updated:
        return count
    version = (table.c[natural] == stage.c[natural]) & table.c.is_current
    same = sa.and_(*(table.c[name].is_not_distinct_from(stage.c[name]) for name in dimension.attributes))
    attributes = {name: stage.c[name] for name in dimension.attributes}
    connection.execute(sa.update(table).where(version, ~table.c.is_inferred, same).values(source_updated_at=stamp))
    real = {**attributes, "is_inferred": sa.false(), "source_updated_at": stamp}
    connection.execute(sa.update(table).where(version, table.c.is_inferred).values(real))
    # What is left older than its staged row changed an attribute: open the new version, then close the old one.
    older = version & (table.c.source_updated_at < stamp)
    opened = {
        dimension.key: table.c[dimension.key],
        natural: stage.c[natural],
        **real,
        "valid_from": stamp,
        "valid_to": sa.literal(schema.END_OF_TIME, sa.DateTime),
        "is_current": sa.true(),
    }
    rows = sa.select(*(value.label(name) for name, value in opened.items())).where(older)
    connection.execute(sa.insert(table).from_select(list(opened), rows))
    connection.execute(sa.update(table).where(older).values(valid_to=stamp, is_current=False))
    known = sa.select(table.c[natural]).where(table.c[natural] == stage.c[natural])
    new = {
        dimension.key: dimension.next_keys(stamp, stage.c[natural]),
        natural: stage.c[natural],
        **real,
        "valid_from": sa.literal(schema.BEGINNING_OF_TIME, sa.DateTime),
        "valid_to": sa.literal(schema.END_OF_TIME, sa.DateTime),
        "is_current": sa.true(),
    }
    rows = sa.select(*(value.label(name) for name, value in new.items())).where(~known.exists())
    connection.execute(sa.insert(table).from_select(list(new), rows))
    return count
