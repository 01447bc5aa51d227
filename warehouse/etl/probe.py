"""Whether a table's incremental read would change anything, found from keys and stamps alone.

An incremental run re-reads the late-commit overlap, so even with nothing new
every table yields a few rows, and reading, parsing, staging and merging them
costs far more than the rows are worth. So the overlap is first read as
natural keys and raw ``updated_at`` only, and looked up by key in the
warehouse: when every row is held there at least as new as the source's
(what the merge would keep unchanged), the table is done. Any other row (a
new or newer one, a stamp or key that does not parse, too many rows to look
up) sends the table through the full read, which loads it or reports it.
"""

from __future__ import annotations

from contextlib import closing
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from warehouse.etl.extract import changed_rows
from warehouse.etl.loads import SourceLoad
from warehouse.etl.values import utc_timestamp

PROBE_ROWS = 10_000
"""More rows than this in the overlap go through the full read: a table that busy is rarely unchanged."""


def _stamps(source: sa.Connection, table: sa.Table, since: datetime, nullable: bool) -> dict[str, datetime] | None:
    """The stamp of each row the incremental read would read, by natural key; None as soon as one is newer than
    the watermark (the warehouse cannot hold it) or its key or stamp is not usable."""
    key = table.primary_key.columns[0].name
    queries = changed_rows(table, since, nullable, lambda raw: [raw.c[key], raw.c.updated_at])
    changed = queries[0] if len(queries) == 1 else sa.union_all(*queries)
    stamps: dict[str, datetime] = {}
    with closing(source.execute(changed.limit(PROBE_ROWS + 1))) as rows:
        for natural, raw in rows:
            try:
                stamp = utc_timestamp(raw)
            except ValueError:
                return None
            if type(natural) is not str or stamp is None or stamp > since or natural in stamps:
                return None
            stamps[natural] = stamp
    return None if len(stamps) > PROBE_ROWS else stamps


def _targets(load: SourceLoad) -> list[tuple[sa.Table, str, sa.ColumnElement[bool]]]:
    """Where the rows of the load's source are kept: (table, natural key, which of its rows)."""
    targets: list[tuple[sa.Table, str, sa.ColumnElement[bool]]] = []
    if load.history is not None:
        table = load.history.table
        targets.append((table, load.history.natural_key, table.c.is_current))
    if load.members is not None:
        targets.append((load.members.table, load.members.natural_key, sa.true()))
    if load.fact is not None:
        targets.append((load.fact.mapping.table, load.fact.mapping.natural_key, sa.true()))
    return targets


def unchanged_rows(
    source: sa.Connection, warehouse: sa.Connection, load: SourceLoad, since: datetime | None, *, nullable: bool
) -> int | None:
    """How many rows the incremental read of ``load`` would read, when none would change the warehouse; else None
    (also for a first load, ``since`` None)."""
    if since is None:
        return None
    stamps = _stamps(source, load.source, since, nullable)
    if stamps is None:
        return None
    if not stamps:
        return 0
    keys = list(stamps)
    for table, key, kept in _targets(load):
        found = sa.select(table.c[key], table.c.source_updated_at).where(table.c[key].in_(keys), kept)
        stored: dict[str, Any] = dict(warehouse.execute(found).all())
        if any(stored.get(natural) is None or stored[natural] < stamp for natural, stamp in stamps.items()):
            return None
    return len(stamps)
