"""The result cache: answers kept per statement, parameters, caller's scope and data version.

An entry's key is a SHA-256 of everything its answer depends on: the data
version (``metrics.data_version``: a new ETL commit makes every earlier key
unreachable), the caller's scope (its grants, row filters and k-anonymity:
two callers share an entry only when their scopes are equal, even where
their SQL happens to be), the SQL text and its bound values, and the output
columns and time zone the rows are converted with. The role gates a request
before anything is looked up; what a role may see reaches the answer only
through the scope (the research role's k, say), so the scope is what keys.

Entries are bytes (``metrics.result_codec``), at most ``max_entry_bytes``
each: a larger result is answered but not kept. They live in memory by
default, or in Redis (``url="redis://..."``) shared by several servers.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from metrics.cache_stores import MemoryStore, RedisStore, Store
from metrics.compiler import OutputColumn
from metrics.policy import Scope
from metrics.result_codec import FORMAT, Uncacheable, decode, encode
from metrics.results import QueryResult

Columns = Sequence[OutputColumn]
MEMORY = "memory://"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True)
class CacheSettings:
    url: str = MEMORY
    """``memory://`` (this process) or ``redis://HOST:PORT/DB`` (shared by every server that names it)."""
    max_entries: int = 1_000
    """Memory: entries kept at most, the least recently used evicted first."""
    max_bytes: int = 64 * 2**20
    """Memory: bytes of entries kept at most."""
    max_entry_bytes: int = 2**20
    """Largest entry stored, in either store; a larger result is answered, not kept."""
    key_prefix: str = "grace-metrics:result:"
    """Redis: prefix of every key, so the cache can share a Redis database with other uses."""
    ttl: float = 3_600.0
    """Redis: seconds an entry lives (entries of an older data version are never read, only left to expire)."""
    timeout: float = 0.1
    """Redis: seconds to connect or to run one command before the request goes on without the cache."""
    retry_after: float = 5.0
    """Redis: seconds without the cache after a failure before it is tried again."""


def open_store(settings: CacheSettings) -> Store:
    if settings.url.startswith(REDIS_SCHEMES):
        return RedisStore(
            settings.url,
            prefix=settings.key_prefix,
            ttl=settings.ttl,
            timeout=settings.timeout,
            retry_after=settings.retry_after,
        )
    return MemoryStore(settings.max_entries, settings.max_bytes)


_PLAIN = (type(None), bool, int, float, str, Decimal, datetime, date, time, timedelta, UUID)


def _canonical(value: Any) -> str:
    """Text that two processes write alike for equal values: sets sorted, every value named by its type.

    A value of any other type raises ``Uncacheable`` (its text might name a memory address).
    """
    if isinstance(value, _PLAIN):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, Enum):
        return f"{type(value).__name__}.{value.name}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = (_canonical(getattr(value, f.name)) for f in dataclasses.fields(value) if f.compare)
        return f"{type(value).__name__}({','.join(fields)})"
    if isinstance(value, (tuple, list)):
        return f"({','.join(map(_canonical, value))})"
    if isinstance(value, (frozenset, set)):
        return f"{{{','.join(sorted(map(_canonical, value)))}}}"
    raise Uncacheable(f"a {type(value).__name__} cannot be part of a cache key")


def entry_key(
    version: str, scope: Scope | None, sql: str, params: Sequence[Any], columns: Columns, timezone: str
) -> str:
    key = (FORMAT, version, scope, sql, tuple(params), columns, timezone)
    return hashlib.sha256(_canonical(key).encode()).hexdigest()


class ResultCache:
    def __init__(self, settings: CacheSettings) -> None:
        self.settings = settings
        self.store = open_store(settings)

    def key(
        self, version: str | None, sql: str, params: Sequence[Any], scope: Scope | None, columns: Columns, timezone: str
    ) -> str | None:
        """The key of the answer of ``sql`` with ``params`` for ``scope`` at data ``version``, converted into
        ``columns`` in ``timezone``; None where nothing is cached (no data version, or a value that cannot be a key).
        """
        if version is None:
            return None
        try:
            return entry_key(version, scope, sql, params, columns, timezone)
        except Uncacheable:
            return None

    async def get(self, key: str, columns: Columns, timezone: str) -> QueryResult | None:
        data = await self.store.get(key)
        return None if data is None else decode(data, columns, timezone)

    async def put(self, key: str, result: QueryResult) -> None:
        try:
            data = encode(result)
        except Uncacheable:
            return
        if len(data) <= self.settings.max_entry_bytes:
            await self.store.put(key, data)

    async def close(self) -> None:
        await self.store.close()
