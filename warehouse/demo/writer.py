"""Writes demo rows the way each source stores them (sources.md): ISO-8601 text in several forms on SQLite."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from warehouse.source import source_metadata

_SQLITE_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S+00:00", "%Y-%m-%dT%H:%M:%S.%f")
CHUNK = 20_000
Progress = Callable[[str, int, int], None]


class SourceWriter:
    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        source_metadata.create_all(self.engine)
        self._written = 0

    def _value(self, column: sa.Column[Any], value: Any) -> Any:
        if value is None or not self.is_sqlite:
            return value
        if isinstance(value, datetime):
            self._written += 1
            return value.astimezone(UTC).strftime(_SQLITE_FORMATS[self._written % len(_SQLITE_FORMATS)])
        if isinstance(column.type, sa.JSON):
            return json.dumps(value)
        return int(value) if isinstance(value, bool) else value

    def _table(self, name: str) -> sa.Table | sa.TableClause:
        table = source_metadata.tables[name]
        return sa.table(name, *(sa.column(c.name) for c in table.columns)) if self.is_sqlite else table

    def insert(self, name: str, rows: Iterable[dict[str, Any]], *, total: int, progress: Progress | None = None) -> int:
        columns = source_metadata.tables[name].columns
        written, chunk = 0, []
        with self.engine.begin() as connection:
            for row in rows:
                chunk.append({c.name: self._value(c, row[c.name]) for c in columns})
                if len(chunk) == CHUNK:
                    written += self._flush(connection, name, chunk, total, progress, written)
                    chunk = []
            written += self._flush(connection, name, chunk, total, progress, written)
        return written

    def _flush(self, connection: sa.Connection, name: str, chunk: list[dict[str, Any]], total: int, progress: Progress | None, before: int) -> int:
        if chunk:
            connection.execute(sa.insert(self._table(name)), chunk)
        if progress:
            progress(name, before + len(chunk), total)
        return len(chunk)

    def update(self, name: str, key: str, changes: list[tuple[Any, dict[str, Any]]]) -> int:
        table = self._table(name)
        columns = source_metadata.tables[name].columns
        with self.engine.begin() as connection:
            for key_value, values in changes:
                formatted = {column: self._value(columns[column], value) for column, value in values.items()}
                connection.execute(sa.update(table).where(table.c[key] == key_value).values(formatted))
        return len(changes)

    def select(self, sql: str) -> list[tuple[Any, ...]]:
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql))]

    def dispose(self) -> None:
        self.engine.dispose()
