"""The query audit log: one row per request in the warehouse table ``audit_log``, chained by hashes.

Each entry's ``hash`` is SHA-256 over the previous entry's hash and the
entry's canonical JSON (sorted keys, no spaces, every column but the two
hashes), so editing, deleting or reordering an entry breaks the chain at
that entry, and ``verify`` names it. The first entry's ``prev_hash`` is 64
zeros.

The chain cannot fork because ``id`` is the primary key and each entry's
hash covers its id: an append that starts from an outdated last entry collides
with the entry written since, fails whole, and is redone from the real last
entry. That makes the common case one statement: a process remembers the last
entry it wrote (per warehouse, whatever the number of ``AuditLog`` objects),
so an append is a single multi-row INSERT, committed at once, with no read and
no lock (one writer per server batches the entries of concurrent requests into
it, see ``graphql_api.audit``). Only after a collision, when other processes
append too (``serve --workers``), does it take turns with them: a PostgreSQL
advisory lock, then it reads the last entry, and it stays on that path: a
process that returned to the single statement whenever nobody else had written
since its last append raced the others on every return, and under load three
writers collided past any bound on retries. Remembering the last
entry also means a deleted last entry is found by ``verify`` instead of being
silently chained over. This module is synchronous, like the rest of the
physical layer; the server calls it from a worker thread.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import Compiled, SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

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


MAX_BATCH = 1000
"""Entries per append at most: one INSERT statement binds 15 values per entry, under every backend's limit."""
PAGE = 1000
"""Entries read per statement when walking the chain."""
ATTEMPTS = 5
"""Appends redone after a collision before giving up: each collision means another writer's append went in."""


class take_turn(FunctionElement[None]):
    """Wait for the chain's cross-process lock: a PostgreSQL session advisory lock. A DuckDB file has one writing
    process, whose appends already take turns in ``_Turn.lock``: nothing to wait for there."""

    inherit_cache = True


class end_turn(FunctionElement[None]):
    inherit_cache = True


@compiles(take_turn)
@compiles(end_turn)
def _nothing_to_take(element: FunctionElement[None], compiler: SQLCompiler, **kw: Any) -> str:
    return "NULL"


@compiles(take_turn, "postgresql")
def _advisory_lock(element: take_turn, compiler: SQLCompiler, **kw: Any) -> str:
    return "pg_advisory_lock(hashtext('grace_metrics_audit'))"


@compiles(end_turn, "postgresql")
def _advisory_unlock(element: end_turn, compiler: SQLCompiler, **kw: Any) -> str:
    return "pg_advisory_unlock(hashtext('grace_metrics_audit'))"


@functools.lru_cache(maxsize=64)
def _insert_rows(dialect: sa.Dialect, count: int) -> Compiled:
    """One INSERT of ``count`` rows (atomic, unlike an executemany of single-row statements: DuckDB runs those one by
    one), its values bound as ``column_n``; compiled once per batch size, as DuckDB's dialect caches no statement."""
    rows = [{column.name: sa.bindparam(f"{column.name}_{n}") for column in audit_log.c} for n in range(count)]
    return audit_log.insert().values(rows).compile(dialect=dialect)


@dataclass
class _Turn:
    """What the appends of one process to one warehouse share."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    """Appends of one process take turns here (DuckDB's own lock is per process, and waiting here is cheap)."""
    last: tuple[int, str] | None = None
    """The id and hash of the last entry this process wrote or read; None until it knows."""
    shared: bool = False
    """Whether another writer ever appended: then every append reads the last entry under the lock."""


_TURNS: dict[str, _Turn] = {}
_SESSION = {"postgresql": {"isolation_level": "AUTOCOMMIT"}}
"""On PostgreSQL each statement commits by itself: an append is one INSERT, one round trip rather than three."""
_NOT_DURABLE = {"postgresql": {"connect_args": {"options": "-c synchronous_commit=off"}}}


@dataclass
class AuditLog:
    """Appends to and reads the chain of one warehouse."""

    url: str
    durable: bool = True
    """Wait for each commit to reach disk. Off (PostgreSQL only), an append costs no disk flush: a crash of the
    database server may lose the last fraction of a second of entries, never reorder or fork the chain."""
    engine: sa.Engine = field(init=False)
    _turn: _Turn = field(init=False)

    def __post_init__(self) -> None:
        # Pooled (unlike the ETL's engines): a request waits for its append, so no connection set-up per append.
        url = warehouse_url(self.url)
        options = {**_SESSION.get(url.get_backend_name(), {})}
        if not self.durable:
            options.update(_NOT_DURABLE.get(url.get_backend_name(), {}))
        self.engine = sa.create_engine(url, pool_size=1, max_overflow=0, pool_reset_on_return=None, **options)
        self._turn = _TURNS.setdefault(self.engine.url.render_as_string(), _Turn())

    def create(self) -> None:
        """The table, once: server processes starting together (``--workers``) take turns, since two
        concurrent CREATE TABLE IF NOT EXISTS on PostgreSQL can both try to create it."""
        with self._turn.lock, self.engine.connect() as connection:
            connection.execute(sa.select(take_turn()))
            try:
                metadata.create_all(connection, checkfirst=True)
                connection.commit()
            finally:
                connection.execute(sa.select(end_turn()))

    def append(self, entries: Sequence[Entry]) -> None:
        """Append in one statement, after the last entry any writer appended; redone from the real last entry
        when another writer appended first (the ids collide, and nothing of the statement is written)."""
        if len(entries) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} audit entries per append, not {len(entries)}")
        turn = self._turn
        with turn.lock, self.engine.connect() as connection:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    if turn.shared or turn.last is None:
                        turn.last = self._append_in_turn(connection, entries)
                    else:
                        turn.last = self._insert(connection, turn.last, entries)
                    return
                except sa.exc.IntegrityError:  # another process appended first: take turns with it from now on
                    connection.rollback()
                    turn.shared = True
                    if attempt == ATTEMPTS:
                        turn.last = None
                        raise
                except BaseException:  # whether the entries were written is unknown: read the last entry next time
                    turn.last = None
                    connection.invalidate()  # and on a new connection, whatever state this one was left in
                    raise

    def _append_in_turn(self, connection: sa.Connection, entries: Sequence[Entry]) -> tuple[int, str]:
        """Under the cross-process lock: read the last entry, append after it; from now on skip the lock and the
        read unless another writer ever appended."""
        connection.execute(sa.select(take_turn()))
        try:
            row = connection.execute(
                sa.select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
            ).first()
            last = (row[0], row[1]) if row else (0, GENESIS)
            if self._turn.last is not None and last != self._turn.last:
                self._turn.shared = True  # another writer appended since this process's last append
            return self._insert(connection, last, entries)
        finally:
            connection.rollback()
            connection.execute(sa.select(end_turn()))

    @staticmethod
    def _insert(connection: sa.Connection, last: tuple[int, str], entries: Sequence[Entry]) -> tuple[int, str]:
        """Insert the entries chained after ``last`` and commit; the new last entry."""
        id_, prev = last
        rows = []
        for entry in entries:
            id_ += 1
            row = _content(entry, id_)
            row["prev_hash"], row["hash"] = prev, chain(prev, row)
            prev = row["hash"]
            rows.append(_stored(row))
        insert = _insert_rows(connection.dialect, len(rows))
        values = {f"{key}_{n}": value for n, row in enumerate(rows) for key, value in row.items()}
        positions = insert.positiontup  # the driver's parameter style: by position (DuckDB) or by name (psycopg)
        connection.exec_driver_sql(insert.string, tuple(values[p] for p in positions) if positions else values)
        connection.commit()
        return id_, prev

    def _check(self, connection: sa.Connection) -> None:
        if not sa.inspect(connection).has_table(audit_log.name):
            raise WarehouseUnavailable(
                f"the warehouse {display_url(self.engine.url)} has no audit_log table: no server has written to it yet"
            )

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry in append order, lists decoded."""
        with self.engine.connect() as connection:
            self._check(connection)
            after = None
            while True:  # by pages of ids (no server-side cursor, which needs a transaction)
                page = sa.select(audit_log).order_by(audit_log.c.id).limit(PAGE)
                if after is not None:
                    page = page.where(audit_log.c.id > after)
                rows = connection.execute(page).mappings().all()
                yield from (_loaded(row) for row in rows)
                if len(rows) < PAGE:
                    return
                after = rows[-1]["id"]

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
