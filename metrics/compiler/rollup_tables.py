"""The physical contract of a rollup: its table, the fingerprint of its contents, and the SQL that refreshes it.

Pure: the warehouse's ETL runs these statements inside its load transaction (``metrics.rollup_store``), so a
reader never sees facts and rollups that disagree.

``refresh_statements`` recomputes the rollup rows of whole UTC buckets: those from the bucket holding ``start``
up to the bucket holding the instant just before ``end`` (``None``: unbounded on that side; no bounds at all: a
full rebuild). With ``member=(column, key)`` only rows of that member are recomputed (after a type-2 change
re-points facts to another version); ``column`` is the fact's key column (``approver_key``) or the key of the
member's dimension table (``actor_key``). A rollup that does not keep that member does not depend on it:
``refresh_statements`` then returns ``None`` and nothing needs to run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement

from metrics.compiler.fact_query import FactQuery, compare
from metrics.compiler.functions import truncate
from metrics.compiler.request import naive_utc
from metrics.compiler.rollup_parts import BUCKET, kept, part_name, part_types, row_parts, stored_measures
from metrics.model import FilterOp, Rollup, TimeGrain
from metrics.registry import Registry

TABLE_PREFIX = "rollup_"
CONTRACT_VERSION = 1
"""Part of every fingerprint: raised when what a rollup table holds changes meaning, so every rollup is rebuilt."""
_STEPS = {TimeGrain.MINUTE: timedelta(minutes=1), TimeGrain.HOUR: timedelta(hours=1), TimeGrain.DAY: timedelta(days=1)}


def table_name(rollup: Rollup) -> str:
    return f"{TABLE_PREFIX}{rollup.name}"


def rollup_table(rollup: Rollup, registry: Registry) -> sa.Table:
    """``rollup_<name>``: the bucket, the kept columns in declared order, then the measures' parts by name."""
    columns = [sa.Column(BUCKET, sa.DateTime())]  # null for fact rows without an event time
    for dimension in kept(rollup, registry):
        columns.append(sa.Column(dimension.column, dimension.type))
        if dimension.valid_from is not None:
            columns.append(sa.Column(dimension.valid_from, sa.DateTime()))
    for name, measure in stored_measures(rollup, registry).items():
        columns += [sa.Column(part_name(name, part), t) for part, t in part_types(measure, registry).items()]
    return sa.Table(table_name(rollup), sa.MetaData(), *columns)


def rollup_fingerprint(rollup: Rollup, registry: Registry) -> str:
    """A hash of everything the table's contents depend on: a changed definition gets another fingerprint."""
    fact = registry.facts[rollup.fact]
    dimensions = [(k, fact.dimensions[k.dimension], registry.dimensions[k.dimension]) for k in kept(rollup, registry)]
    table = rollup_table(rollup, registry)
    described = (
        CONTRACT_VERSION,
        rollup.fact,
        rollup.grain.value,
        fact.table,
        fact.time,
        sorted((name, str(t.value)) for name, t in fact.columns.items()),
        sorted(fact.expressions.items()),
        [(str(path), dimension.table, dimension.key, str(dimension.history)) for _, path, dimension in dimensions],
        sorted((name, repr(measure)) for name, measure in stored_measures(rollup, registry).items()),
        [(column.name, str(column.type)) for column in table.columns],
    )
    return hashlib.sha256(repr(described).encode()).hexdigest()


def bucket_floor(moment: datetime, grain: TimeGrain) -> datetime:
    """The start of the UTC bucket holding ``moment`` (naive UTC, or aware)."""
    moment = naive_utc(moment)
    if grain is TimeGrain.DAY:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain is TimeGrain.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


def bucket_ceiling(moment: datetime, grain: TimeGrain) -> datetime:
    """The first bucket edge at or after ``moment``."""
    floor = bucket_floor(moment, grain)
    return floor if floor == naive_utc(moment) else floor + _STEPS[grain]


def _member_column(rollup: Rollup, registry: Registry, column: str) -> str | None:
    """The kept fact column a member column names (the fact's own, or the dimension table's key), else None."""
    for dimension in kept(rollup, registry):
        if column in (dimension.column, registry.dimensions[dimension.dimension].key):
            return dimension.column
    return None


def refresh_statements(
    rollup: Rollup,
    registry: Registry,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    member: tuple[str, int] | None = None,
) -> tuple[sa.Delete, sa.Insert] | None:
    """Delete the rollup's rows of the buckets [floor(start), ceil(end)) (of ``member`` only, if given) and insert
    them again from the fact rows; ``None`` when the rollup does not keep ``member`` (see the module's text)."""
    table = rollup_table(rollup, registry)
    member_column = None if member is None else _member_column(rollup, registry, member[0])
    if member is not None and member_column is None:
        return None
    low = None if start is None else bucket_floor(start, rollup.grain)
    high = None if end is None else bucket_ceiling(end, rollup.grain)
    rows = FactQuery(registry, registry.facts[rollup.fact])
    conditions, kept_conditions = [], []
    for moment, name, op in ((low, "refresh_from", FilterOp.GTE), (high, "refresh_to", FilterOp.LT)):
        if moment is not None:
            conditions.append(compare(rows.event_time, op, sa.bindparam(name, moment, sa.DateTime())))
            kept_conditions.append(compare(table.c[BUCKET], op, sa.bindparam(name, moment, sa.DateTime())))
    if member is not None and member_column is not None:
        conditions.append(rows.table.c[member_column] == sa.bindparam("member", member[1], sa.Integer()))
        kept_conditions.append(table.c[member_column] == sa.bindparam("member", member[1], sa.Integer()))
    delete = sa.delete(table).where(*kept_conditions)
    select = _rows(rollup, registry, rows).where(*conditions)
    insert = sa.insert(table).from_select([column.name for column in table.columns], select)
    return delete, insert


def _rows(rollup: Rollup, registry: Registry, rows: FactQuery) -> sa.Select[Any]:
    """The fact's rows grouped by UTC bucket, kept columns and type-2 versions (the compiler's as-of join)."""
    groups: list[ColumnElement[Any]] = [truncate(rollup.grain, rows.event_time).label(BUCKET)]
    for dimension in kept(rollup, registry):
        groups.append(rows.table.c[dimension.column].label(dimension.column))
        history = registry.dimensions[dimension.dimension].history
        if dimension.valid_from is not None and history is not None:
            groups.append(rows.join(dimension.dimension).c[history.valid_from].label(dimension.valid_from))
    parts = [
        value.label(part_name(name, part))
        for name, measure in stored_measures(rollup, registry).items()
        for part, value in row_parts(measure, registry, *rows.measure_input(measure)).items()
    ]
    statement = sa.select(*groups, *parts).select_from(rows.source)
    return statement.group_by(*(sa.literal_column(str(i)) for i in range(1, len(groups) + 1)))


def current_rollups(recorded: Iterable[tuple[str, str]], registry: Registry) -> frozenset[str]:
    """The declared rollups whose recorded fingerprint (name, fingerprint) is the registry's: their tables hold
    exactly what the registry declares, so the plan may read them."""
    return frozenset(
        name
        for name, fingerprint in recorded
        if name in registry.rollups and fingerprint == rollup_fingerprint(registry.rollups[name], registry)
    )
