"""Rollup benchmark: dashboard requests with routing off (the fact tables) and on (the rollups), per backend.

Loads the demo data, builds the built-in rollups (``ensure_rollups``, timed), then times each request through
the engine with ``rollups=False`` and with rollups, alternating, and the routed request's SQL run directly on
the same connection (the layer's overhead over the SQL it writes). The requests are those of
``bench/query.py`` plus an agent-by-day panel and a drill-across by tier and day; ``explain`` of each says
which rollup it read or why none could. Routed and unrouted answers are compared too (they must be equal).

    .venv/bin/python bench/rollups.py --scale 50                         # 1M verifications, both backends
    .venv/bin/python bench/rollups.py --scale 500 --backends duckdb      # 10M
    .venv/bin/python bench/rollups.py --warehouse duckdb:///w.duckdb      # a warehouse loaded already
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa
from query import REQUESTS as DASHBOARD  # bench/query.py: run as a script, bench/ is on the path
from query import _verifications
from rich.console import Console
from rich.table import Table

from metrics.compiler import DimensionRef, MetricRequest
from metrics.engine import MetricsEngine
from metrics.registry import load_registry
from metrics.rollup_store import ensure_rollups
from warehouse.connections import warehouse_url
from warehouse.demo import generate_demo_source
from warehouse.etl import run_etl

REQUESTS = {
    **DASHBOARD,
    "agent by day": MetricRequest(
        ("verification_count", "verification_success_rate", "avg_verification_duration_ms"),
        (DimensionRef.parse("agent.name"), DimensionRef.parse("time.day")),
    ),
    "drill-across by tier and day, Berlin": MetricRequest(
        ("errors_per_verification", "error_count", "verification_count"),
        (DimensionRef.parse("tier.name"), DimensionRef.parse("time.day")),
        timezone="Europe/Berlin",
    ),
}


async def measure(url: str, repeats: int) -> list[tuple[str, str, float, float, float, bool]]:
    """(request, scan, off, on, routed SQL) median seconds, and whether the answers agree."""
    engine = await MetricsEngine.connect(url)
    await engine.data_version()  # learns which rollups the warehouse holds, as a request would
    found = []
    try:
        for name, request in REQUESTS.items():
            off = replace(request, rollups=False)
            compiled = engine.compile(request)
            sql, params = engine.render(compiled)
            runs = {
                "off": lambda off=off: engine.query(off),
                "on": lambda request=request: engine.query(request),
                "sql": lambda sql=sql, params=params: engine.backend.fetch(sql, params, timeout=600),
            }
            seconds: dict[str, list[float]] = {key: [] for key in runs}
            for attempt in range(repeats + 1):
                for key in list(runs) if attempt % 2 else list(reversed(runs)):
                    started = time.perf_counter()
                    await runs[key]()
                    if attempt:
                        seconds[key].append(time.perf_counter() - started)
            agree = (await engine.query(off)).rows == (await engine.query(request)).rows
            scans = "; ".join(str(aggregate.scan) for aggregate in compiled.plan.aggregates)
            found.append((name, scans, *(statistics.median(seconds[key]) for key in runs), agree))
        return found
    finally:
        await engine.close()


def _bench_backend(
    backend: str, source: str, directory: str, label: str, pg: str, repeats: int, console: Console
) -> None:
    if backend == "duckdb":
        load_url = query_url = f"duckdb:///{directory}/warehouse.duckdb"
        admin, database = None, None
    else:
        admin = sa.create_engine(pg, isolation_level="AUTOCOMMIT")
        database = f"gm_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
        load_url = admin.url.set(database=database).render_as_string(hide_password=False)
        query_url = load_url.replace("postgresql+psycopg", "postgresql+asyncpg")
    try:
        started = time.perf_counter()
        run_etl(source, load_url, hash_key="bench")
        console.print(f"{backend}: ETL {time.perf_counter() - started:.0f}s")
        _report(backend, load_url, query_url, label, repeats, console)
    finally:
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            admin.dispose()


def _report(backend: str, load_url: str, query_url: str, label: str, repeats: int, console: Console) -> None:
    """Build the rollups the warehouse lacks, then time the requests off and on and print the table."""
    engine = sa.create_engine(warehouse_url(load_url), poolclass=sa.pool.NullPool)
    started = time.perf_counter()
    with engine.begin() as connection:
        built = ensure_rollups(connection, load_registry())
    engine.dispose()
    console.print(f"{backend}: rollups built in {time.perf_counter() - started:.1f}s:")
    for line in built:
        console.print(f"  {line}", highlight=False)
    table = Table(title=f"{backend}, {label}: routing off vs on (median of {repeats})", show_lines=True)
    for heading in ("request", "scan", "off ms", "on ms", "off/on", "routed SQL ms", "on/SQL", "equal"):
        table.add_column(heading, justify="left" if heading in ("request", "scan") else "right")
    for name, scans, off, on, sql, agree in asyncio.run(measure(query_url, repeats)):
        table.add_row(
            name,
            scans,
            f"{off * 1000:.1f}",
            f"{on * 1000:.1f}",
            f"{off / on:.1f}",
            f"{sql * 1000:.1f}",
            f"{on / sql:.2f}",
            "yes" if agree else "NO",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=50, help="demo scale; 50 = 1M verifications (default)")
    parser.add_argument("--backends", default="duckdb,postgresql")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--source", type=Path, help="SQLite demo source to reuse (generated there if missing)")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1/test", help="server for a bench db")
    parser.add_argument("--warehouse", help="a warehouse loaded already (duckdb:///FILE or postgresql+psycopg://...)")
    args = parser.parse_args()
    console = Console(width=160)
    if args.warehouse:
        loaded = sa.create_engine(warehouse_url(args.warehouse), poolclass=sa.pool.NullPool)
        with loaded.connect() as connection:
            count = connection.execute(sa.text("SELECT count(*) FROM fact_verifications")).scalar_one()
        loaded.dispose()
        backend = "duckdb" if args.warehouse.startswith("duckdb") else "postgresql"
        query_url = args.warehouse.replace("postgresql+psycopg", "postgresql+asyncpg")
        _report(backend, args.warehouse, query_url, f"{count:,} verifications", args.repeats, console)
        return
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if set(backends) - {"duckdb", "postgresql"}:
        parser.error("--backends takes duckdb and/or postgresql")
    with tempfile.TemporaryDirectory() as directory:
        path = args.source or Path(directory) / "source.sqlite"
        source = f"sqlite:///{path}"
        if not path.exists():
            started = time.perf_counter()
            generate_demo_source(source, scale=args.scale)
            console.print(f"generated scale {args.scale:g} in {time.perf_counter() - started:.0f}s")
        label = f"{_verifications(source):,} verifications"
        for backend in backends:
            _bench_backend(backend, source, directory, label, args.pg, args.repeats, console)


if __name__ == "__main__":
    main()
