"""The warehouse's data version: what the ETL commits with its data, read per request.

An ETL run marks itself ``succeeded`` in ``etl_runs`` in the same
transaction that loads its rows, so the set of succeeded runs changes
exactly when the data does, and whoever committed it: the server's own
scheduled ETL or another process. The version is that set's count, latest
finish and largest run id (a random UUID, so two warehouses never share a
version). A warehouse without a succeeded run (or without the table) has no
version, and nothing is cached for it.

Each lookup reads the version after it arrived, so an answer cached before
a commit is never served after it. Lookups that arrive while a read is
still waiting to be sent share it (a dashboard's panels arrive together);
one that arrives after the read was sent starts its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa

from metrics.errors import MetricsError

log = logging.getLogger(__name__)

ETL_RUNS = sa.table("etl_runs", sa.column("run_id"), sa.column("status"), sa.column("finished_at"))
"""The ETL's run log, by name: the metrics layer does not import the warehouse package."""
VERSION_QUERY = sa.select(sa.func.count(), sa.func.max(ETL_RUNS.c.finished_at), sa.func.max(ETL_RUNS.c.run_id)).where(
    ETL_RUNS.c.status == "succeeded"
)

Read = Callable[[], Awaitable[list[tuple[Any, ...]]]]
"""Runs ``VERSION_QUERY`` (rendered once by the engine) and returns its row."""


class DataVersion:
    def __init__(self, read: Read) -> None:
        self._read_rows = read
        self._waiting: asyncio.Future[str | None] | None = None
        """The read not yet sent, which callers arriving now may share."""

    async def current(self) -> str | None:
        """The version now, or None when there is none (nothing is then cached)."""
        if self._waiting is None:
            self._waiting = asyncio.ensure_future(self._read())
        # Shielded: a caller that goes away does not cancel the read for the others.
        return await asyncio.shield(self._waiting)

    async def _read(self) -> str | None:
        self._waiting = None  # sent from here on: later callers read again
        try:
            [(runs, finished, run_id)] = await self._read_rows()
        except MetricsError as error:  # no etl_runs table, or the warehouse is down (the query will say so)
            log.debug("no data version, results are not cached: %s", error)
            return None
        return f"{runs}:{finished}:{run_id}" if runs else None
