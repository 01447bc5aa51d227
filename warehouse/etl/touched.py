"""What a run changed in the facts, so the tables derived from them (rollups) refresh only that.

Two kinds of change move a fact row's contribution to an aggregate:
- a fact row inserted or replaced: its event time, and for a replaced row its old event time too (a correction
  may move it), touch that UTC day; touched days are reported as ranges of whole days;
- a type-2 member's versions changing: from the earliest boundary that differs, that member's facts resolve to
  another version, so its facts from there on are touched (only through the column referencing that member).

Facts only ever reference members through their durable keys; type-1 member changes (actors, components,
missions) change attributes, not which member a fact belongs to, and touch nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from warehouse import schema
from warehouse.etl.members import DIMENSIONS, Dimension

MAX_RANGES = 64
"""Beyond this many separate runs of days per fact, the closest ranges merge: fewer, larger refreshes."""

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Touched:
    """Fact rows of ``fact_table`` whose event time is in ``[start, end)`` (None: unbounded), and when ``member``
    is ``(column, key)`` only those whose ``column`` holds ``key``."""

    fact_table: str
    start: datetime | None
    end: datetime | None
    member: tuple[str, int] | None = None


class TouchedDays:
    """The UTC days of the fact rows a run inserted or replaced, per fact table."""

    def __init__(self) -> None:
        self._days: dict[str, set[datetime]] = {}

    def record(self, connection: sa.Connection, table: str, event_times: sa.Select[Any]) -> None:
        """Record the days of ``event_times`` (one column: rows of ``table`` about to be inserted or replaced)."""
        times = event_times.subquery("touched")
        days = sa.select(sa.func.date_trunc("day", times.c[0])).distinct()
        self._days.setdefault(table, set()).update(connection.execute(days).scalars())

    def ranges(self) -> Iterator[Touched]:
        """Per fact table, and per table of its children (replaced with its rows), its touched days as ranges."""
        for table, days in self._days.items():
            ranges = _merged(_runs(sorted(days)))
            for name in (table, *(child.name for child in schema.CHILDREN.get(table, ()))):
                yield from (Touched(name, start, end) for start, end in ranges)


def _runs(days: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Consecutive days as half-open ranges."""
    runs: list[tuple[datetime, datetime]] = []
    for day in days:
        if runs and runs[-1][1] == day:
            runs[-1] = (runs[-1][0], day + DAY)
        else:
            runs.append((day, day + DAY))
    return runs


def _merged(runs: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """At most ``MAX_RANGES`` ranges, merging across the smallest gaps first."""
    while len(runs) > MAX_RANGES:
        smallest = min(range(len(runs) - 1), key=lambda i: runs[i + 1][0] - runs[i][1])
        runs[smallest : smallest + 2] = [(runs[smallest][0], runs[smallest + 1][1])]
    return runs


Boundaries = dict[int, Counter[datetime]]


def _boundaries(connection: sa.Connection, dimension: Dimension) -> Boundaries:
    table = dimension.table
    found: Boundaries = {}
    rows = connection.execute(sa.select(table.c[dimension.key], table.c.valid_from, table.c.valid_to))
    for key, valid_from, valid_to in rows:
        found.setdefault(key, Counter()).update((valid_from, valid_to))
    return found


class VersionChanges:
    """Type-2 members whose version boundaries a run changed: snapshot before the run, compare after.

    Type-2 dimensions are small (tiers, agents), so their boundaries are read whole.
    """

    def __init__(self, connection: sa.Connection) -> None:
        self._historical = [dimension for dimension in DIMENSIONS.values() if dimension.historical]
        self._before = {dimension.name: _boundaries(connection, dimension) for dimension in self._historical}

    def touched(self, connection: sa.Connection) -> Iterator[Touched]:
        for dimension in self._historical:
            before, after = self._before[dimension.name], _boundaries(connection, dimension)
            for key, old in before.items():
                new = after.get(key, Counter())
                differing = (old - new) + (new - old)
                if differing:
                    yield from _member_facts(dimension.name, key, min(differing))


def _member_facts(dimension: str, key: int, since: datetime) -> Iterator[Touched]:
    """The rows referencing the member from ``since``: of each fact, and of its children that copy the key."""
    for mapping in schema.FACTS:
        for member in mapping.of(schema.MemberKey):
            if member.dimension == dimension:
                for table in (mapping.table, *schema.CHILDREN.get(mapping.table.name, ())):
                    if member.name in table.c:
                        yield Touched(table.name, since, None, (member.name, key))
