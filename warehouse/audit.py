"""The query audit log: one row per request in the warehouse table ``audit_log``, chained by hashes.

Each entry's ``hash`` is SHA-256 over the previous entry's hash and the
entry's canonical JSON (sorted keys, no spaces, every column but the two
hashes), so editing, deleting or reordering an entry breaks the chain at
that entry, and ``verify`` names it. The first entry's ``prev_hash`` is 64
zeros.

Appends are serialised, so the chain cannot fork: one writer per server
batches the entries of concurrent requests into one transaction (see
``graphql_api.audit``), and the transaction takes a lock that holds across
processes (a PostgreSQL advisory lock; DuckDB lets one process write a file).
This module is synchronous, like the rest of the physical layer; the server
calls it from a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from warehouse.connections import display_url, warehouse_url
from warehouse.errors import WarehouseUnavailable

GENESIS = "0" * 64
metadata = sa.MetaData()
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("logged_at", sa.DateTime, nullable=False),
    sa.Column("caller", sa.String, nullable=False),
    sa.Column("role", sa.String),
    sa.Column("groups", sa.String, nullable=False),
    sa.Column("operation", sa.String),
    sa.Column("metrics", sa.String, nullable=False),
    sa.Column("dimensions", sa.String, nullable=False),
    sa.Column("filters", sa.String, nullable=False),
    sa.Column("rows_returned", sa.BigInteger, nullable=False),
    sa.Column("suppressed_rows", sa.BigInteger, nullable=False),
    sa.Column("duration_ms", sa.Double, nullable=False),
    sa.Column("outcome", sa.String, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
_LISTS = ("groups", "metrics", "dimensions", "filters")
"""Columns holding a list, stored as canonical JSON text (the same on every backend)."""


@dataclass(frozen=True)
class Entry:
    """What one request did; ``id``, ``prev_hash`` and ``hash`` are given when it is appended."""

    logged_at: datetime
    caller: str
    role: str | None
    operation: str | None
    outcome: str
    duration_ms: float
    groups: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    dimensions: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    rows_returned: int = 0
    suppressed_rows: int = 0


def canonical(row: dict[str, Any]) -> bytes:
    """The entry as hashed: every column but the hashes, keys sorted, times in ISO form, lists as lists."""
    content = {key: value for key, value in row.items() if key not in ("prev_hash", "hash")}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), default=_iso).encode()


def chain(prev_hash: str, row: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(row)).hexdigest()


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    raise TypeError(f"{type(value).__name__} is not part of an audit entry")


def _content(entry: Entry, id_: int) -> dict[str, Any]:
    row = {"id": id_, **asdict(entry)}
    row["duration_ms"] = round(float(entry.duration_ms), 3)  # a float hashes the same after the round trip
    row["logged_at"] = entry.logged_at.replace(tzinfo=None)
    row.update({key: list(row[key]) for key in _LISTS})
    return row


def _stored(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, **{key: json.dumps(row[key], separators=(",", ":")) for key in _LISTS}}


def _loaded(row: sa.RowMapping) -> dict[str, Any]:
    loaded = dict(row)
    loaded.update({key: json.loads(loaded[key]) for key in _LISTS})
    return loaded


_LOCKS: dict[str, threading.Lock] = {}
"""One lock per warehouse within a process, whatever the number of ``AuditLog`` objects on it: DuckDB's own lock
is per process, and waiting here is cheaper than PostgreSQL's advisory lock."""


@dataclass
class AuditLog:
    """Appends to and reads the chain of one warehouse."""

    url: str
    durable: bool = True
    """Wait for each commit to reach disk. Off (PostgreSQL only), an append costs no disk flush: a crash of the
    database server may lose the last fraction of a second of entries, never reorder or fork the chain."""
    engine: sa.Engine = field(init=False)
    _lock: threading.Lock = field(init=False)

    def __post_init__(self) -> None:
        # Pooled (unlike the ETL's engines): a request waits for its append, so no connection set-up per append.
        self.engine = sa.create_engine(warehouse_url(self.url), pool_size=1, max_overflow=0)
        self._lock = _LOCKS.setdefault(self.engine.url.render_as_string(), threading.Lock())

    def create(self) -> None:
        """The table, once: server processes starting together (``--workers``) take turns, since two
        concurrent CREATE TABLE IF NOT EXISTS on PostgreSQL can both try to create it."""
        with self._lock, self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('grace_metrics_audit'))"))
            metadata.create_all(connection, checkfirst=True)

    def append(self, entries: Sequence[Entry]) -> None:
        """Append in one transaction, after the last entry any writer appended."""
        with self._lock, self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('grace_metrics_audit'))"))
                if not self.durable:
                    connection.execute(sa.text("SET LOCAL synchronous_commit = off"))
            last = connection.execute(
                sa.select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
            ).first()
            id_, prev = (last[0], last[1]) if last else (0, GENESIS)
            rows = []
            for entry in entries:
                id_ += 1
                row = _content(entry, id_)
                row["prev_hash"], row["hash"] = prev, chain(prev, row)
                prev = row["hash"]
                rows.append(_stored(row))
            connection.execute(audit_log.insert(), rows)

    def _check(self, connection: sa.Connection) -> None:
        if not sa.inspect(connection).has_table(audit_log.name):
            raise WarehouseUnavailable(
                f"the warehouse {display_url(self.engine.url)} has no audit_log table: no server has written to it yet"
            )

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry in append order, lists decoded."""
        with self.engine.connect() as connection:
            self._check(connection)
            result = connection.execution_options(yield_per=1000).execute(sa.select(audit_log).order_by(audit_log.c.id))
            for row in result.mappings():
                yield _loaded(row)

    def tail(self, count: int) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            self._check(connection)
            rows = connection.execute(sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(count)).mappings()
            return [_loaded(row) for row in reversed(list(rows))]

    def close(self) -> None:
        self.engine.dispose()


@dataclass(frozen=True)
class Verdict:
    entries: int
    broken: int | None = None
    """The id of the first entry that does not verify (its position when the ids themselves are out of order)."""
    reason: str = ""


def verify(log: AuditLog) -> Verdict:
    """Walk the chain from the start; the first entry whose link or content does not hash as stored breaks it."""
    prev, count = GENESIS, 0
    for count, row in enumerate(log.entries(), start=1):
        if row["id"] != count:
            return Verdict(count - 1, row["id"], f"entry {count} is missing: the next one has id {row['id']}")
        if row["prev_hash"] != prev:
            return Verdict(count - 1, row["id"], "its prev_hash is not the previous entry's hash (moved or removed)")
        if chain(prev, row) != row["hash"]:
            return Verdict(count - 1, row["id"], "its content does not match its hash (edited)")
        prev = row["hash"]
    return Verdict(count)
