"""Keeping the warehouse's rollup tables in step with the registry and the facts, on a caller's connection.

The warehouse's ETL calls both functions inside the transaction that loads the facts, so readers see facts and
rollups change together. Each rollup's definition and fingerprint are recorded in ``rollup_definitions``: a
rollup newly declared is built, one whose definition changed (another fingerprint) is rebuilt, and a
``rollup_*`` table no longer declared is dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from metrics.compiler.rollup_tables import TABLE_PREFIX, refresh_statements, rollup_fingerprint, rollup_table
from metrics.model import Rollup
from metrics.registry import Registry
from metrics.rollup_rules import DEFINITIONS

DEFINITIONS_TABLE = sa.Table(
    f"{TABLE_PREFIX}{DEFINITIONS}",
    sa.MetaData(),
    sa.Column("name", sa.Text(), primary_key=True),
    sa.Column("fingerprint", sa.Text(), nullable=False),
    sa.Column("definition", sa.Text(), nullable=False),
)


@dataclass(frozen=True)
class Touched:
    """Fact rows an ETL run wrote: of ``fact_table``, with event times in [start, end) (None: unbounded), and of one
    member only when ``member`` is given (``(key column, key)``: a type-2 change that re-points facts)."""

    fact_table: str
    start: datetime | None = None
    end: datetime | None = None
    member: tuple[str, int] | None = None


@dataclass(frozen=True)
class RollupRefresh:
    """What keeping one rollup in step did: ``created``, ``rebuilt`` (its definition changed), ``dropped`` (no
    longer declared) or ``refreshed`` (the touched buckets), the rows it now holds there, and the seconds it took."""

    rollup: str
    rows: int
    seconds: float
    action: str = "refreshed"


def _definition(rollup: Rollup) -> str:
    return json.dumps(
        {
            "fact": rollup.fact,
            "grain": rollup.grain.value,
            "dimensions": list(rollup.dimensions),
            "metrics": list(rollup.metrics),
        }
    )


def ensure_rollups(connection: sa.Connection, registry: Registry) -> list[RollupRefresh]:
    """Build the missing rollups, rebuild the changed ones, drop the undeclared ones; says what it did."""
    DEFINITIONS_TABLE.create(connection, checkfirst=True)
    stored = dict(connection.execute(sa.select(DEFINITIONS_TABLE.c.name, DEFINITIONS_TABLE.c.fingerprint)).all())
    existing = set(sa.inspect(connection).get_table_names())
    done = []
    for rollup in registry.rollups.values():
        table, fingerprint = rollup_table(rollup, registry), rollup_fingerprint(rollup, registry)
        if stored.get(rollup.name) == fingerprint and table.name in existing:
            continue
        verb = "rebuilt" if rollup.name in stored or table.name in existing else "created"
        began = time.perf_counter()
        table.drop(connection, checkfirst=True)
        table.create(connection)
        statements = refresh_statements(rollup, registry)
        assert statements is not None  # only a member refresh can have nothing to do
        rows = _run(connection, *statements)
        # statistics now, so the first queries are planned for the rows the table holds (not for an empty table)
        connection.execute(sa.text(f"ANALYZE {connection.dialect.identifier_preparer.quote(table.name)}"))
        _record(connection, rollup.name, fingerprint, _definition(rollup))
        done.append(RollupRefresh(rollup.name, rows, time.perf_counter() - began, verb))
    declared = {rollup_table(rollup, registry).name for rollup in registry.rollups.values()}
    for name in sorted(existing - declared - {DEFINITIONS_TABLE.name}):
        if name.startswith(TABLE_PREFIX):
            sa.Table(name, sa.MetaData()).drop(connection)
            done.append(RollupRefresh(name.removeprefix(TABLE_PREFIX), 0, 0.0, "dropped"))
    connection.execute(sa.delete(DEFINITIONS_TABLE).where(DEFINITIONS_TABLE.c.name.not_in(list(registry.rollups))))
    return done


def _record(connection: sa.Connection, name: str, fingerprint: str, definition: str) -> None:
    connection.execute(sa.delete(DEFINITIONS_TABLE).where(DEFINITIONS_TABLE.c.name == name))
    connection.execute(sa.insert(DEFINITIONS_TABLE).values(name=name, fingerprint=fingerprint, definition=definition))


def _run(connection: sa.Connection, delete: sa.Delete, insert: sa.Insert) -> int:
    """Delete and insert again; the rows now in the refreshed range (drivers do not all count inserted rows)."""
    connection.execute(delete)
    connection.execute(insert)
    assert isinstance(delete.table, sa.Table)
    counted = sa.select(sa.func.count()).select_from(delete.table)
    if delete.whereclause is not None:
        counted = counted.where(delete.whereclause)
    return int(connection.execute(counted).scalar_one())


def refresh_rollups(
    connection: sa.Connection, registry: Registry, touched: Iterable[Touched], *, skip: Collection[str] = ()
) -> list[RollupRefresh]:
    """Recompute the buckets (and members) of every rollup of the touched facts but those in ``skip`` (just
    built); one entry per rollup refreshed."""
    rows: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for change in touched:
        for rollup in registry.rollups.values():
            if rollup.name in skip or registry.facts[rollup.fact].table != change.fact_table:
                continue
            statements = refresh_statements(rollup, registry, start=change.start, end=change.end, member=change.member)
            if statements is None:
                continue
            began = time.perf_counter()
            inserted = _run(connection, *statements)
            seconds[rollup.name] = seconds.get(rollup.name, 0.0) + time.perf_counter() - began
            rows[rollup.name] = rows.get(rollup.name, 0) + inserted
    return [RollupRefresh(name, rows[name], seconds[name]) for name in rows]
