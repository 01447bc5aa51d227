"""The stores: an LRU bounded by entries and bytes, and Redis, real, and down in every way a server can be down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import redis

from metrics.cache_stores import MemoryStore, RedisStore
from metrics.result_cache import CacheSettings, open_store

TIMEOUT = 0.2
HANG = 10 * TIMEOUT
"""Far past the bound a store keeps (twice its socket timeout); a store that waited this long would be hanging."""


async def test_the_memory_store_evicts_the_least_recently_used_past_its_entries() -> None:
    store = MemoryStore(max_entries=3, max_bytes=1_000)
    for key in "abc":
        await store.put(key, key.encode())
    assert await store.get("a") == b"a"  # a is now the most recently used, b the least
    await store.put("d", b"d")
    assert [key in store for key in "abcd"] == [True, False, True, True]


async def test_the_memory_store_evicts_past_its_bytes_and_counts_replaced_entries_once() -> None:
    store = MemoryStore(max_entries=100, max_bytes=10)
    await store.put("a", b"1234")
    await store.put("a", b"12345")  # replaced: 5 bytes held, not 9
    await store.put("b", b"12345")
    assert (len(store), store.bytes) == (2, 10)
    await store.put("c", b"1")
    assert ["a" in store, "b" in store, "c" in store] == [False, True, True]
    assert store.bytes == 6
    await store.put("huge", b"x" * 11)  # larger than the whole store: kept by nobody
    assert (len(store), store.bytes) == (0, 0)


async def test_redis_keeps_entries_under_the_prefix_with_an_expiry(redis_cache: CacheSettings) -> None:
    store = open_store(redis_cache)
    assert isinstance(store, RedisStore)
    await store.put("k", b"\x00entry")
    assert await store.get("k") == b"\x00entry"
    assert await store.get("other") is None
    await store.close()
    client = redis.Redis.from_url(redis_cache.url)
    assert client.get(redis_cache.key_prefix + "k") == b"\x00entry"
    assert 0 < client.pttl(redis_cache.key_prefix + "k") <= redis_cache.ttl * 1000
    client.close()


def _store(port: int, retry_after: float = 60.0) -> RedisStore:
    return RedisStore(
        f"redis://127.0.0.1:{port}/0", prefix="grace-metrics-test:", ttl=60, timeout=TIMEOUT, retry_after=retry_after
    )


@asynccontextmanager
async def _server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def _bounded(operation: Awaitable[object]) -> object:
    started = time.monotonic()
    answer = await asyncio.wait_for(operation, HANG)
    assert time.monotonic() - started < HANG
    return answer


async def _closed_port() -> int:
    async with _server(lambda reader, writer: asyncio.sleep(0)) as port:
        pass
    return port


async def test_a_closed_port_is_a_miss_and_a_put_that_goes_nowhere() -> None:
    store = _store(await _closed_port())
    assert await _bounded(store.get("k")) is None
    assert await _bounded(store.put("k", b"v")) is None
    await store.close()


async def test_a_server_that_never_answers_costs_one_timeout_then_nothing_until_retry() -> None:
    accepted = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read()  # holds the connection open and says nothing

    async with _server(silent) as port:
        store = _store(port)
        assert await _bounded(store.get("k")) is None
        tried = len(accepted)
        for _ in range(5):  # within retry_after: the store is not tried again
            assert await _bounded(store.get("k")) is None
            await store.put("k", b"v")
        assert len(accepted) == tried == 1
        await store.close()
        for writer in accepted:
            writer.close()


async def _proxy_to(port: int, connections: list[asyncio.StreamWriter]) -> Callable[..., Awaitable[None]]:
    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        connections.extend([writer, upstream_writer])
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    return handle


async def test_a_connection_redis_drops_is_a_miss_and_the_store_comes_back(redis_cache: CacheSettings) -> None:
    redis_port = int(redis_cache.url.rsplit(":", 1)[1].split("/")[0])
    connections: list[asyncio.StreamWriter] = []
    async with _server(await _proxy_to(redis_port, connections)) as port:
        store = RedisStore(
            f"redis://127.0.0.1:{port}/0", prefix=redis_cache.key_prefix, ttl=60, timeout=TIMEOUT, retry_after=0.5
        )
        await store.put("k", b"v")
        assert await store.get("k") == b"v"
        for writer in connections:  # Redis goes away mid-connection
            writer.transport.abort()
        connections.clear()
        assert await _bounded(store.get("k")) is None
        await asyncio.sleep(0.6)  # past retry_after: tried again, through a fresh connection
        assert await _bounded(store.get("k")) == b"v"
        await store.close()
        for writer in connections:
            writer.close()
