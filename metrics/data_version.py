"""The warehouse's data version, read per request.

The ETL commits a new version (``data_version`` in ``etl_settings``) in the
same transaction as the rows it changes, whoever runs it (the server's own
scheduled ETL or another process), and leaves it alone when a run finds
nothing new, as does a rollup build that changes nothing. Answers of one
version are the same answers, so the result cache keys on it, and the
engine learns again which rollups the warehouse holds when it changes. A
warehouse that was never loaded (or lacks the table) has no version.

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

from metrics.errors import BackendUnavailable, MetricsError, QueryTimeout

log = logging.getLogger(__name__)

ETL_SETTINGS = sa.table("etl_settings", sa.column("name"), sa.column("value"))
"""The ETL's settings, by name: the metrics layer does not import the warehouse package."""
VERSION_QUERY = sa.select(ETL_SETTINGS.c.value).where(ETL_SETTINGS.c.name == "data_version")

Read = Callable[[], Awaitable[list[tuple[Any, ...]]]]
"""Runs ``VERSION_QUERY`` (rendered once by the engine) and returns its row."""


class DataVersion:
    def __init__(self, read: Read) -> None:
        self._read_rows = read
        self._waiting: asyncio.Future[str | None] | None = None
        """The read not yet sent, which callers arriving now may share."""
        self._reads: set[asyncio.Future[str | None]] = set()
        """Reads not finished yet, cancelled by ``close`` (a server stopping does not wait for a frozen warehouse)."""

    async def current(self) -> str | None:
        """The version now, or None when there is none (nothing is then cached)."""
        if self._waiting is None:
            self._waiting = read = asyncio.ensure_future(self._read())
            self._reads.add(read)
            read.add_done_callback(self._reads.discard)
        # Shielded: a caller that goes away does not cancel the read for the others.
        return await asyncio.shield(self._waiting)

    def close(self) -> None:
        for read in self._reads:
            read.cancel()

    async def _read(self) -> str | None:
        self._waiting = None  # sent from here on: later callers read again
        try:
            rows = await self._read_rows()
        except (BackendUnavailable, QueryTimeout):
            raise  # the warehouse is down or frozen: the request fails now, not after a second wait for its query
        except MetricsError as error:  # no etl_settings table: a warehouse never loaded
            log.debug("no data version, results are not cached: %s", error)
            return None
        return str(rows[0][0]) if rows else None
