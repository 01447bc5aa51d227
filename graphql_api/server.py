"""Running the app under uvicorn, optionally with the ETL on a schedule inside the server.

DuckDB lets one process write a database file, so the scheduled ETL runs in
the server's own process (in a worker thread) rather than beside it; new data
is visible to the next query without a restart. A server without the ETL
opens a DuckDB file read-only, so other readers can share it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import uvicorn

from graphql_api.app import create_app
from graphql_api.rollups import RegistryRollups
from graphql_api.settings import ListenError, Settings
from metrics.engine import EngineSettings, MetricsEngine
from metrics.registry import Registry, load_registry
from warehouse.connections import display_url, missing_duckdb_file, warehouse_loaded
from warehouse.errors import WarehouseError, WarehouseUnavailable
from warehouse.etl import EtlResult, run_etl

log = logging.getLogger("grace_metrics.etl")
T = TypeVar("T")


async def _in_daemon_thread(function: Callable[[], T]) -> T:
    """``function()`` in a daemon thread: a stopping server never waits for an ETL run (it commits all or nothing)."""
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            done.set_result(function())
        except BaseException as error:  # noqa: BLE001 -- handed to the awaiting task, which decides
            done.set_exception(error)

    threading.Thread(target=run, name="grace-metrics-etl", daemon=True).start()
    return await asyncio.wrap_future(done)


def changed_rows(result: EtlResult) -> int:
    """Source rows that changed the warehouse; rows re-read in the overlap window and already loaded do not count."""
    return sum(table.rows_inserted + table.rows_updated for table in result.tables)


def scheduled_etl(  # type: ignore[no-untyped-def]
    source: str, warehouse: str, *, every: float, hash_key: str, rollups: RegistryRollups
):
    """A lifespan companion that loads ``source`` into ``warehouse`` every ``every`` seconds, rollups in step."""

    @contextlib.asynccontextmanager
    async def run(engine: MetricsEngine) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                try:
                    result = await _in_daemon_thread(
                        lambda: run_etl(source, warehouse, hash_key=hash_key, derived=rollups)
                    )
                    if changed := changed_rows(result):
                        log.info("ETL run %s loaded %d changed source rows", result.run_id[:8], changed)
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


async def check_warehouse(settings: Settings, registry: Registry, *, read_only: bool) -> None:
    """Open the warehouse once: a wrong URL, an unusable file or an unreachable server is one message, no traceback."""
    engine = await MetricsEngine.connect(settings.warehouse_url, registry, EngineSettings(read_only=read_only))
    await engine.close()


def not_loaded(url: str) -> WarehouseUnavailable:
    """What to run when there is no warehouse yet: the ETL, or a server that loads it, or the demo."""
    return WarehouseUnavailable(
        f"the warehouse {display_url(url)} has not been loaded yet. Load it from your operational database "
        f"with `grace-metrics etl --source SOURCE_URL --warehouse {display_url(url)}`, or add "
        "`--source SOURCE_URL` to this serve command (in Docker: after the image name), with GRACE_METRICS_HASH_KEY "
        "set, to load it before serving and keep it fresh; `grace-metrics demo` tries the project on generated data."
    )


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


def address(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


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
    """Serve until interrupted; bad config, a taken port and an unusable warehouse fail here, before uvicorn starts.

    With a source, a warehouse that was never loaded is loaded before serving (a failure then is fatal);
    later runs follow the schedule, and their failures are logged while the server keeps answering.
    """
    if workers > 1 and (source or settings.warehouse_url.startswith("duckdb")):
        raise ListenError(
            "--workers above 1 needs a PostgreSQL warehouse and no --source: a DuckDB file has one writing "
            "process, and the in-server ETL must run once"
        )
    registry = load_registry(settings.config_dirs)
    if not source and missing_duckdb_file(settings.warehouse_url):
        raise not_loaded(settings.warehouse_url)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with listen(host, port) as sock:
        background = None
        if source and hash_key:
            if not warehouse_loaded(settings.warehouse_url):
                log.info("loading the warehouse %s from %s …", display_url(settings.warehouse_url), display_url(source))
                run_etl(source, settings.warehouse_url, hash_key=hash_key, derived=RegistryRollups(registry))
            background = scheduled_etl(
                source, settings.warehouse_url, every=etl_every, hash_key=hash_key, rollups=RegistryRollups(registry)
            )
        asyncio.run(
            check_warehouse(
                settings, registry, read_only=not settings.writes_warehouse(runs_etl=background is not None)
            )
        )
        config = uvicorn.Config(
            create_app(settings, registry, background),
            log_level="info",
            http="httptools",
            loop="uvloop",
            timeout_graceful_shutdown=settings.shutdown_timeout,  # type: ignore[arg-type]
        )
        logging.getLogger("grace_metrics.server").info(
            "serving %s/graphql (GraphiQL in a browser) and %s/healthz; Ctrl-C to stop",
            address(host, port),
            address(host, port),
        )
        children = []
        for _ in range(workers - 1):
            pid = os.fork()  # before any event loop or connection exists; the kernel spreads connections
            if pid == 0:  # a worker: serve on the shared socket, and leave without the parent's clean-up
                with contextlib.suppress(KeyboardInterrupt):
                    uvicorn.Server(config).run(sockets=[sock])
                os._exit(0)
            children.append(pid)
        try:
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server is stopped, not a failure
                uvicorn.Server(config).run(sockets=[sock])
        finally:
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
