"""Where result-cache entries live: this process's memory (an LRU), or Redis shared by several servers.

Both hold opaque bytes under hex keys (``metrics.result_cache`` builds both).
Redis is an optimisation, never a dependency: a command that fails or does
not answer within the socket timeout is a miss, and after a failure the
store is left alone for ``retry_after`` seconds, so an outage costs each
request nothing rather than a timeout. No command is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
T = TypeVar("T")


class Store(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes) -> None: ...

    async def close(self) -> None: ...


class MemoryStore:
    """The ``max_entries`` most recently used entries, evicting the least recently used past either bound."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    async def get(self, key: str) -> bytes | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes) -> None:
        replaced = self._entries.pop(key, None)
        self.bytes += len(value) - (len(replaced) if replaced is not None else 0)
        self._entries[key] = value
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= len(evicted)

    async def close(self) -> None:
        self._entries.clear()
        self.bytes = 0


class RedisStore:
    """Entries under ``prefix`` + key, each expiring after ``ttl`` seconds (old data versions are never read)."""

    def __init__(self, url: str, *, prefix: str, ttl: float, timeout: float, retry_after: float) -> None:
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        self.prefix = prefix
        self._ttl_ms = max(1, round(ttl * 1000))
        self._timeout = timeout
        self._retry_after = retry_after
        self._down_until: float | None = None

    async def get(self, key: str) -> bytes | None:
        return await self._call(lambda: self._client.get(self.prefix + key))

    async def put(self, key: str, value: bytes) -> None:
        await self._call(lambda: self._client.set(self.prefix + key, value, px=self._ttl_ms))

    async def _call(self, command: Callable[[], Awaitable[T]]) -> T | None:
        if self._down_until is not None and time.monotonic() < self._down_until:
            return None
        try:
            # Connecting and the command are each bounded by the socket timeout; this bounds the whole.
            async with asyncio.timeout(2 * self._timeout):
                answer = await command()
        except (RedisError, OSError, TimeoutError) as error:
            if self._down_until is None:
                log.warning(
                    "the Redis result cache is unavailable (%s); serving without it, trying again every %gs",
                    type(error).__name__,
                    self._retry_after,
                )
            self._down_until = time.monotonic() + self._retry_after
            return None
        if self._down_until is not None:
            log.warning("the Redis result cache is available again")
            self._down_until = None
        return answer

    async def close(self) -> None:
        try:
            async with asyncio.timeout(2 * self._timeout):
                await self._client.aclose()
        except (RedisError, OSError, TimeoutError):
            pass  # nothing to give back to a server that is gone
