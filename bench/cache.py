"""Result-cache benchmark: a cache hit through GraphQL over HTTP, against a miss, no cache and hand-written SQL.

Four ``grace-metrics serve`` processes over one warehouse: without the cache
(``GRACE_METRICS_CACHE_URL=off``), with the in-memory cache, with one that
keeps nothing (``GRACE_METRICS_CACHE_ENTRY_BYTES=1``: every request a miss)
and with Redis (127.0.0.1:6379). A keep-alive httpx client posts bench/api.py's requests over
loopback; per request, in rotating order:

- off: the server without the cache (no data version read, nothing stored);
- miss: the server that keeps nothing: the uncached work, plus reading the data version and encoding the answer;
- hit: the in-memory server, the same request again (reading the data version, decoding the entry);
- redis: the Redis server, the same request again;
- engine hit / engine: ``MetricsEngine.query`` in this process with the in-memory cache (a hit) and without;
  the difference between a GraphQL hit and an engine hit is GraphQL, HTTP and the audit log, not the cache;
- SQL: the hand-written SQL, through the engine's driver in this process.

The table's caption gives ``{ __typename }`` on the same server: what HTTP, GraphQL and the audit log cost a
request that queries nothing, the floor under any hit.

The audit log of every server is kept in a PostgreSQL database of its own
(non-durable), as several servers over one DuckDB file need: the warehouse has no writer.

    .venv/bin/python bench/cache.py --scale 10                    # 200k verifications, both backends
    .venv/bin/python bench/cache.py --backends duckdb --repeats 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa
from api import CASES, load_warehouse, served
from rich.console import Console
from rich.table import Table

from metrics.engine import EngineSettings, MetricsEngine
from warehouse.demo import generate_demo_source

REQUESTS = (
    "one row (kpi)",
    "verifications by tier",
    "by tier and day (bench/query)",
    "hourly by tier, typed rows (5 fields)",
    "drill-across by component (bench/query)",
    "filtered by kernel (bench/query)",
)
MODES = {
    "off": {"GRACE_METRICS_CACHE_URL": "off"},
    "memory": {"GRACE_METRICS_CACHE_URL": "memory://"},
    "miss": {"GRACE_METRICS_CACHE_URL": "memory://", "GRACE_METRICS_CACHE_ENTRY_BYTES": "1"},
    "redis": {"GRACE_METRICS_CACHE_URL": "redis://127.0.0.1:6379/0"},
}
WAYS = ("off", "miss", "hit", "redis", "engine hit", "engine", "SQL")


@contextmanager
def audit_database(pg: str) -> Iterator[str]:
    admin = sa.create_engine(pg, isolation_level="AUTOCOMMIT")
    name = f"gm_bench_audit_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def servers(url: str, audit: str) -> Iterator[dict[str, str]]:
    """One server per cache mode; each reads its cache settings from the environment it starts with."""
    saved = dict(os.environ)
    bases = {}
    with ExitStack() as stack:
        try:
            for mode, cache in MODES.items():
                os.environ.clear()
                os.environ.update(saved, **cache, GRACE_METRICS_AUDIT_URL=audit, GRACE_METRICS_AUDIT_DURABLE="false")
                bases[mode] = stack.enter_context(served(url))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        yield bases


async def _measure(bases: dict[str, str], url: str, repeats: int) -> tuple[dict[str, dict[str, list[float]]], float]:
    engine = await MetricsEngine.connect(url, settings=EngineSettings(cache=None))
    cached_engine = await MetricsEngine.connect(url)
    seconds: dict[str, dict[str, list[float]]] = {way: {name: [] for name in REQUESTS} for way in WAYS}
    clients = {mode: httpx.AsyncClient(base_url=base, timeout=600) for mode, base in bases.items()}
    try:

        async def post(mode: str, query: str, expected: str | None) -> None:
            body = (await clients[mode].post("/graphql", json={"query": query})).json()
            if "errors" in body or body.get("extensions", {}).get("cache") != expected:
                raise RuntimeError(f"{mode}: {query}: {body.get('errors') or body.get('extensions')}")

        async def run(way: str, name: str) -> None:
            case = CASES[name]
            if way == "off":
                await post("off", case.graphql, None)
            elif way == "miss":
                await post("miss", case.graphql, "miss")
            elif way in ("hit", "redis"):
                mode = "memory" if way == "hit" else "redis"
                await post(mode, case.graphql, "hit")
            elif way == "engine hit":
                if (await cached_engine.query(case.request)).from_cache is not True:  # type: ignore[arg-type]
                    raise RuntimeError(f"engine: {name} was not a hit")
            elif way == "engine":
                await engine.query(case.request)  # type: ignore[arg-type]
            else:
                await engine.backend.fetch(case.sql, [], timeout=600)  # type: ignore[arg-type]

        for name in REQUESTS:
            for mode in ("memory", "redis"):  # the entries the hits read
                await clients[mode].post("/graphql", json={"query": CASES[name].graphql})
            await cached_engine.query(CASES[name].request)  # type: ignore[arg-type]
            for attempt in range(repeats + 1):
                shift = attempt % len(WAYS)
                for way in WAYS[shift:] + WAYS[:shift]:
                    started = time.perf_counter()
                    await run(way, name)
                    if attempt:  # the first is a warm-up
                        seconds[way][name].append(time.perf_counter() - started)
        floor = []
        for _ in range(repeats):
            started = time.perf_counter()
            await post("memory", "{ __typename }", None)
            floor.append(time.perf_counter() - started)
    finally:
        for client in clients.values():
            await client.aclose()
        await engine.close()
        await cached_engine.close()
    return seconds, statistics.median(floor) * 1000


def bench(url: str, audit: str, repeats: int, console: Console, label: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        mine = url
        if url.startswith("duckdb:///"):  # this process reads a copy: the servers hold the file
            mine = f"duckdb:///{scratch}/copy.duckdb"
            shutil.copy(url.removeprefix("duckdb:///"), mine.removeprefix("duckdb:///"))
        with servers(url, audit) as bases:
            seconds, floor = asyncio.run(_measure(bases, mine, repeats))
    table = Table(
        title=f"{label}: median of {repeats} (p95), ms", caption=f"{{ __typename }} on the same server: {floor:.2f} ms"
    )
    for heading in ("request", *WAYS, "hit/SQL", "off/hit", "eng/eng hit"):
        table.add_column(heading, justify="left" if heading == "request" else "right")
    for name in REQUESTS:
        medians = {way: statistics.median(seconds[way][name]) * 1000 for way in WAYS}
        p95s = {way: statistics.quantiles(seconds[way][name], n=20)[-1] * 1000 for way in WAYS}
        cells = [f"{medians[way]:.2f} ({p95s[way]:.1f})" for way in WAYS]
        ratios = (
            medians["hit"] / medians["SQL"],
            medians["off"] / medians["hit"],
            medians["engine"] / medians["engine hit"],
        )
        table.add_row(name, *cells, *(f"{ratio:.2f}" for ratio in ratios))
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=10, help="demo scale; 10 = 200k verifications (default)")
    parser.add_argument("--backends", default="duckdb,postgresql")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per request and way (default 30)")
    parser.add_argument(
        "--pg", default="postgresql+psycopg://postgres@127.0.0.1/test", help="server for the audit and bench databases"
    )
    args = parser.parse_args()
    console = Console(width=240)
    with tempfile.TemporaryDirectory() as directory, audit_database(args.pg) as audit:
        source = f"sqlite:///{Path(directory) / 'source.sqlite'}"
        generate_demo_source(source, scale=args.scale)
        for backend in (name.strip() for name in args.backends.split(",") if name.strip()):
            url, admin, database = load_warehouse(backend, source, directory, args.pg)
            try:
                bench(url, audit, args.repeats, console, backend)
            finally:
                if admin is not None:
                    with admin.connect() as connection:
                        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                    admin.dispose()


if __name__ == "__main__":
    main()
