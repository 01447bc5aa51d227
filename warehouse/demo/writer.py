"""Writing batches under one transaction, in chunks, telling the caller how far each table got."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import sqlalchemy as sa

from warehouse.demo.backends import Backend
from warehouse.demo.batch import Batch
from warehouse.demo.world import CHUNK_ROWS

Progress = Callable[[str, int, int], None]


class Writer:
    """Counts rows per table; ``expect`` announces totals up front so a progress bar knows its length."""

    def __init__(self, connection: sa.Connection, backend: Backend, progress: Progress | None) -> None:
        self._connection = connection
        self._backend = backend
        self._progress = progress
        self._expected: Counter[str] = Counter()
        self.written: Counter[str] = Counter()

    def expect(self, table: str, rows: int) -> None:
        self._expected[table] += rows

    def insert(self, batch: Batch) -> None:
        for start in range(0, len(batch), CHUNK_ROWS):
            part = batch.take(slice(start, start + CHUNK_ROWS))
            self._backend.insert(self._connection, part)
            self._report(batch.table.name, len(part))

    def update(self, batch: Batch, key: str) -> None:
        for start in range(0, len(batch), CHUNK_ROWS):
            part = batch.take(slice(start, start + CHUNK_ROWS))
            self._backend.update(self._connection, part, key)
            self._report(batch.table.name, len(part))

    def _report(self, table: str, rows: int) -> None:
        self.written[table] += rows
        if self._progress is not None:
            done = self.written[table]
            self._progress(table, done, max(done, self._expected[table]))
