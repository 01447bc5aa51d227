"""The listening socket: accepted connections send small responses at once (TCP_NODELAY).

Without it, a keep-alive client's second request on a connection waits for
the delayed ACK of the first response, some 40 ms per request.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from graphql_api.server import listen
from tests.graphql_api.test_server import Server, _warehouse, start_server


async def test_accepted_connections_have_tcp_nodelay() -> None:
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    with listen("127.0.0.1", 0) as sock:
        server = await asyncio.start_server(handle, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname())
            assert await asyncio.wait_for(accepted, 5) != 0
            writer.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    _, url = _warehouse("duckdb", tmp_path, lambda: "")
    yield from start_server(tmp_path / "server.log", "--warehouse", url, backend="duckdb", warehouse=url)


def test_back_to_back_requests_on_one_connection_are_fast(served: Server) -> None:
    with httpx.Client(base_url=served.base) as client:
        seconds = []
        for _ in range(30):
            started = time.perf_counter()
            response = client.post("/graphql", json={"query": "{ __typename }"})
            seconds.append(time.perf_counter() - started)
            assert response.json() == {"data": {"__typename": "Query"}}
    assert statistics.median(seconds[5:]) < 0.02, seconds
