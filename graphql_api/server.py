"""Running the app under uvicorn, optionally with the ETL on a schedule inside the server.

DuckDB lets one process write a database file, so the scheduled ETL runs in
the server's own process (in a worker thread) rather than beside it; new data
is visible to the next query without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator

import uvicorn

from graphql_api.app import create_app
from graphql_api.settings import ListenError, Settings
from metrics.engine import MetricsEngine
from metrics.registry import Registry, load_registry
from warehouse.errors import WarehouseError
from warehouse.etl import run_etl

log = logging.getLogger("grace_metrics.etl")


def scheduled_etl(source: str, warehouse: str, *, every: float, hash_key: str):  # type: ignore[no-untyped-def]
    """A lifespan companion that loads ``source`` into ``warehouse`` every ``every`` seconds."""

    @contextlib.asynccontextmanager
    async def run(engine: MetricsEngine) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                try:
                    result = await asyncio.to_thread(run_etl, source, warehouse, hash_key=hash_key)
                    read = sum(t.rows_read for t in result.tables)
                    log.info("ETL run %s loaded %d changed source rows", result.run_id[:8], read)
                except WarehouseError as error:
                    log.error("ETL run failed: %s", error)
                except Exception:  # the schedule outlives any one failed run
                    log.exception("ETL run failed unexpectedly")
                await asyncio.sleep(every)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return run


async def check_warehouse(settings: Settings, registry: Registry) -> None:
    """Open the warehouse once, so a wrong URL, a missing file or an unreachable server is one message, not a traceback."""
    engine = await MetricsEngine.connect(settings.warehouse_url, registry)
    await engine.close()


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, bound before anything else starts so a taken port is one message.

    The protocol is named (``IPPROTO_TCP``, not 0): asyncio sets ``TCP_NODELAY`` only on accepted sockets whose
    protocol says TCP, and without it a keep-alive client waits some 40 ms per request for a delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ListenError(
            f"cannot listen on {host}:{port}: {error.strerror}; stop what runs there or pick another --port"
        ) from None
    return sock


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    source: str | None = None,
    etl_every: float = 60.0,
    hash_key: str | None = None,
    workers: int = 1,
) -> None:
    """Serve until interrupted; bad config, a taken port and an unusable warehouse fail here, before uvicorn starts."""
    if workers > 1 and (source or settings.warehouse_url.startswith("duckdb")):
        raise ListenError(
            "--workers above 1 needs a PostgreSQL warehouse and no --source: a DuckDB file has one writing "
            "process, and the in-server ETL must run once"
        )
    registry = load_registry(settings.config_dirs)
    with listen(host, port) as sock:
        asyncio.run(check_warehouse(settings, registry))
        background = (
            scheduled_etl(source, settings.warehouse_url, every=etl_every, hash_key=hash_key)
            if source and hash_key
            else None
        )
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        config = uvicorn.Config(
            create_app(settings, registry, background), log_level="info", http="httptools", loop="uvloop"
        )
        children = []
        for _ in range(workers - 1):
            pid = os.fork()  # before any event loop or connection exists; the kernel spreads connections
            if pid == 0:  # a worker: serve on the shared socket, and leave without the parent's clean-up
                uvicorn.Server(config).run(sockets=[sock])
                os._exit(0)
            children.append(pid)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
