"""Running the app under uvicorn, optionally with the ETL on a schedule inside the server.

DuckDB lets one process write a database file, so the scheduled ETL runs in
the server's own process (in a worker thread) rather than beside it; new data
is visible to the next query without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import uvicorn

from graphql_api.app import create_app
from graphql_api.settings import Settings
from metrics.engine import MetricsEngine
from metrics.registry import load_registry
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


def serve(
    *,
    warehouse: str,
    host: str,
    port: int,
    config: Sequence[str] = (),
    source: str | None = None,
    etl_every: float = 60.0,
    hash_key: str | None = None,
) -> None:
    settings = Settings.from_env(warehouse_url=warehouse, config_dirs=tuple(Path(c) for c in config))
    registry = load_registry(settings.config_dirs)  # fail on bad config before binding the port
    background = scheduled_etl(source, warehouse, every=etl_every, hash_key=hash_key) if source and hash_key else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    uvicorn.run(create_app(settings, registry, background), host=host, port=port, log_level="info")
