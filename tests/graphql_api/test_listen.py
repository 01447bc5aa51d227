"""The listening socket: accepted connections send small responses at once (TCP_NODELAY); workers share it.

Without it, a keep-alive client's second request on a connection waits for
the delayed ACK of the first response, some 40 ms per request.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from graphql_api.server import listen
from tests.graphql_api.test_server import _warehouse, start_server


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


def test_workers_share_the_port_over_postgresql(tmp_path: Path, pg_database: Callable[[], str]) -> None:
    _, url = _warehouse("postgresql", tmp_path, pg_database)
    log = tmp_path / "server.log"
    for server in start_server(log, "--warehouse", url, "--workers", "2", backend="postgresql", warehouse=url):
        with httpx.Client(base_url=server.base) as client:
            for _ in range(10):
                response = client.post("/graphql", json={"query": "{ metrics { rows { verificationCount } } }"})
                assert response.json()["data"] == {"metrics": {"rows": [{"verificationCount": 60}]}}
    assert log.read_text().count("Application startup complete") == 2


def test_workers_over_duckdb_are_refused_with_the_reason(tmp_path: Path) -> None:
    _, url = _warehouse("duckdb", tmp_path, lambda: "")
    command = [sys.executable, "-m", "graphql_api.cli", "serve", "--warehouse", url, "--workers", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--workers above 1 needs a PostgreSQL warehouse" in done.stderr, done.stderr
