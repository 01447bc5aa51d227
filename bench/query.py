"""Query benchmark: the layer's overhead against raw SQL, compile time at scale, time-relative vs plain metrics.

For typical dashboard requests, times ``engine.query`` (compile + execute +
convert) and the same compiled SQL executed directly on the same backend
connection; the ratio is what the layer costs. Then times ``compile_query``
against the built-in catalog and models of 100, 200 and 400 metrics with 100
dimensions, to show compile time does not grow with the model. Time-relative requests
(a 7-day rolling rate by day and tier, a previous-period comparison) are timed
against the same request with the plain metric (target: under 2x). PostgreSQL is
only touched (a bench database created and dropped) when it is among
``--backends``.

    .venv/bin/python bench/query.py --scale 50            # 1M verifications over 28 days
    .venv/bin/python bench/query.py --scale 38.5 --periods 13   # 10M verifications over 364 days
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from metrics.compiler import DimensionRef, MetricRequest, Predicate, TimeRange, compile_query
from metrics.engine import EngineSettings, MetricsEngine
from metrics.model import FilterOp
from metrics.registry import Registry, load_registry
from warehouse.demo import generate_demo_source
from warehouse.etl import run_etl
from warehouse.schema import ERRORS, QUERIES, VERIFICATIONS, FactMapping

PERIOD_DAYS = 28
"""The demo's snapshot: ``--periods`` copies of it, each 28 days before the last, make a longer history."""

REQUESTS = {
    "kpis, no dimensions": MetricRequest(("verification_count", "verification_success_rate", "rollback_rate")),
    "by tier and day": MetricRequest(
        ("verification_count", "verification_success_rate"),
        (DimensionRef.parse("tier.name"), DimensionRef.parse("time.day")),
    ),
    "p95 by agent type, Berlin week": MetricRequest(
        ("p95_verification_duration_ms",),
        (DimensionRef.parse("agent.type"), DimensionRef.parse("time.week")),
        timezone="Europe/Berlin",
    ),
    "drill-across by component": MetricRequest(
        ("errors_per_verification", "error_count"), (DimensionRef.parse("component.kernel"),)
    ),
    "filtered by kernel": MetricRequest(
        ("verification_count",),
        (DimensionRef.parse("action_type"),),
        where=Predicate(DimensionRef.parse("component.kernel"), FilterOp.IN, ("core", "ingress")),
    ),
}

_BY_DAY_AND_TIER = (DimensionRef.parse("time.day"), DimensionRef.parse("tier.name"))
_LAST = TimeRange(datetime(2025, 10, 6, tzinfo=UTC), datetime(2025, 11, 3, tzinfo=UTC))
"""The demo's last 28 days (its default anchor): a dashboard's range, on day boundaries."""
TIME_RELATIVE = {  # name: (time-relative request, the same request as a plain aggregate)
    "7-day success rate by day and tier": (
        MetricRequest(("verification_success_rate_7d",), _BY_DAY_AND_TIER),
        MetricRequest(("verification_success_rate",), _BY_DAY_AND_TIER),
    ),
    "7-day count by day and tier, Berlin": (
        MetricRequest(("verification_count_7d",), _BY_DAY_AND_TIER, timezone="Europe/Berlin"),
        MetricRequest(("verification_count",), _BY_DAY_AND_TIER, timezone="Europe/Berlin"),
    ),
    "errors vs previous day by tier": (
        MetricRequest(("error_count", "error_count_previous", "error_count_change"), _BY_DAY_AND_TIER),
        MetricRequest(("error_count",), _BY_DAY_AND_TIER),
    ),
    "errors vs previous day by tier, 28 days in range": (
        MetricRequest(
            ("error_count", "error_count_previous", "error_count_change"), _BY_DAY_AND_TIER, time_range=_LAST
        ),
        MetricRequest(("error_count",), _BY_DAY_AND_TIER, time_range=_LAST),
    ),
    "28-day unique users by day": (
        MetricRequest(("unique_users_28d",), (DimensionRef.parse("time.day"),)),
        MetricRequest(("unique_users",), (DimensionRef.parse("time.day"),)),
    ),
}


async def timings(engine: MetricsEngine, request: MetricRequest, repeats: int) -> tuple[float, float]:
    """Median seconds through the layer and as raw SQL, after one warm-up of each.

    The two alternate which goes first, so neither always finds the other's
    work in DuckDB's or PostgreSQL's caches.
    """
    sql, params = engine.render(engine.compile(request))

    async def layer() -> None:
        await engine.query(request)

    async def raw() -> None:
        await engine.backend.fetch(sql, params, timeout=600)

    seconds: dict[Callable[[], Awaitable[None]], list[float]] = {layer: [], raw: []}
    for attempt in range(repeats + 1):
        for run in (layer, raw) if attempt % 2 else (raw, layer):
            started = time.perf_counter()
            await run()
            if attempt:
                seconds[run].append(time.perf_counter() - started)
    return statistics.median(seconds[layer]), statistics.median(seconds[raw])


async def measure(url: str, repeats: int) -> list[tuple[str, float, float]]:
    engine = await MetricsEngine.connect(url)
    try:
        return [(name, *await timings(engine, request, repeats)) for name, request in REQUESTS.items()]
    finally:
        await engine.close()


async def measure_time_relative(url: str, repeats: int) -> list[tuple[str, float, float]]:
    """Median seconds through the layer of each time-relative request and of its plain twin, alternating (a year
    of 10M verifications takes longer than a server's statement timeout)."""
    engine = await MetricsEngine.connect(url, settings=EngineSettings(statement_timeout=600))
    try:
        found = []
        for name, (relative, plain) in TIME_RELATIVE.items():
            seconds: dict[MetricRequest, list[float]] = {relative: [], plain: []}
            for attempt in range(repeats + 1):
                for request in (relative, plain) if attempt % 2 else (plain, relative):
                    started = time.perf_counter()
                    await engine.query(request)
                    if attempt:
                        seconds[request].append(time.perf_counter() - started)
            found.append((name, statistics.median(seconds[relative]), statistics.median(seconds[plain])))
        return found
    finally:
        await engine.close()


def big_model(directory: Path, metrics: int, dimensions: int = 100) -> None:
    """``metrics`` metrics over ``dimensions`` value dimensions on the verifications table (plus the built-ins)."""
    dimension_yaml = "\n".join(
        f"  bench_dim_{i}:\n    label: Bench dimension {i}\n    type: string" for i in range(dimensions)
    )
    facts = (
        "facts:\n  bench_fact:\n    label: Bench\n    table: fact_verifications\n    time: created_at\n"
        "    columns: {duration_ms: integer, status: string}\n    dimensions:\n"
        + "\n".join(f"      bench_dim_{i}: status" for i in range(dimensions))
    )
    metric_yaml = "\n".join(
        f"  bench_metric_{i}:\n    label: Bench metric {i}\n    description: A generated metric.\n"
        f"    fact: bench_fact\n    aggregation: {('count', 'avg', 'percentile')[i % 3]}\n"
        + ("    column: duration_ms\n" if i % 3 else "")
        + ("    percentile: 0.9\n" if i % 3 == 2 else "")
        for i in range(metrics)
    )
    (directory / "bench.yaml").write_text(f"dimensions:\n{dimension_yaml}\n{facts}\nmetrics:\n{metric_yaml}\n")


def _median_compile_seconds(request: MetricRequest, registry: Registry, repeats: int = 50) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        compile_query(request, registry)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def compile_times(sizes: Sequence[int] = (100, 200, 400)) -> list[tuple[str, int, float]]:
    """Median compile time of the same 10-metric, 5-dimension request per model size: it should stay flat.

    The first row is the built-in catalog with a dashboard-sized request.
    """
    builtins = load_registry()
    rows = [("built-ins", len(builtins.metrics), _median_compile_seconds(REQUESTS["by tier and day"], builtins))]
    for size in sizes:
        with tempfile.TemporaryDirectory() as directory:
            big_model(Path(directory), size)
            registry = load_registry([directory])
        request = MetricRequest(
            tuple(f"bench_metric_{i}" for i in range(10)), tuple(DimensionRef(f"bench_dim_{i * 19}") for i in range(5))
        )
        rows.append(
            (f"{size} metrics, 100 dimensions", len(registry.metrics), _median_compile_seconds(request, registry))
        )
    return rows


def _copy_back(connection: sa.Connection, fact: FactMapping, periods: int) -> None:
    """Copies of the fact's loaded rows, each ``PERIOD_DAYS`` earlier than the last, keyed ``<key>~<copy>``."""
    table = fact.table
    first = connection.execute(sa.select(sa.func.min(table.c[fact.event_time]))).scalar_one()
    for copy in range(1, periods):
        shift = timedelta(days=PERIOD_DAYS * copy)
        columns = [
            column + f"~{copy}"
            if column.name == fact.natural_key
            else column - shift
            if isinstance(column.type, sa.DateTime)
            else column
            for column in table.c
        ]
        rows = sa.select(*columns).where(table.c[fact.event_time] >= first)
        connection.execute(table.insert().from_select([column.name for column in table.c], rows))


def spread_over_periods(url: str, periods: int) -> None:
    """Verifications, errors and queries (what the time-relative requests read) over ``periods`` x 28 days."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for fact in (VERIFICATIONS, ERRORS, QUERIES):
            _copy_back(connection, fact, periods)
    with engine.begin() as connection:
        connection.execute(sa.text("ANALYZE"))  # statistics of the grown tables, for the planner
    engine.dispose()


def _verifications(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(VERIFICATIONS.table)).scalar_one()
    engine.dispose()
    return count


def _bench_backend(
    backend: str, source: str, directory: str, periods: int, pg: str, repeats: int, console: Console
) -> None:
    """Load the warehouse, time the requests; a PostgreSQL bench database exists only while this runs."""
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
        run_etl(source, load_url, hash_key="bench")
        if periods > 1:
            spread_over_periods(load_url, periods)
        label = f"{_verifications(load_url):,} verifications over {periods * PERIOD_DAYS} days"
        table = Table(title=f"{backend}, {label} (median of {repeats})")
        for heading in ("request", "layer ms", "raw SQL ms", "ratio"):
            table.add_column(heading, justify="left" if heading == "request" else "right")
        for name, layer, raw in asyncio.run(measure(query_url, repeats)):
            table.add_row(name, f"{layer * 1000:.1f}", f"{raw * 1000:.1f}", f"{layer / raw:.2f}")
        console.print(table)
        table = Table(title=f"{backend}, {label}: time-relative vs the plain metric (median of {repeats})")
        for heading in ("request", "time-relative ms", "plain ms", "ratio"):
            table.add_column(heading, justify="left" if heading == "request" else "right")
        for name, relative, plain in asyncio.run(measure_time_relative(query_url, repeats)):
            table.add_row(name, f"{relative * 1000:.1f}", f"{plain * 1000:.1f}", f"{relative / plain:.2f}")
        console.print(table)
    finally:
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=50, help="demo scale; 50 = 1M verifications (default)")
    parser.add_argument("--backends", default="duckdb,postgresql")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument(
        "--periods", type=int, default=1, help="copies of the 28 loaded days, each 28 days earlier (13: a year)"
    )
    parser.add_argument(
        "--source", type=Path, help="SQLite demo source to reuse across runs (generated there at --scale if missing)"
    )
    parser.add_argument(
        "--pg",
        default="postgresql+psycopg://postgres@127.0.0.1/test",
        help="PostgreSQL server to create a bench database on",
    )
    args = parser.parse_args()
    console = Console()
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = set(backends) - {"duckdb", "postgresql"}
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))} (use duckdb, postgresql)")
    with tempfile.TemporaryDirectory() as directory:
        path = args.source or Path(directory) / "source.sqlite"
        source = f"sqlite:///{path}"
        if args.source and args.source.exists():
            console.print(f"reusing the source {path} (--scale is not applied to it)")
        else:
            started = time.perf_counter()
            generate_demo_source(source, scale=args.scale)
            console.print(f"generated scale {args.scale:g} in {time.perf_counter() - started:.0f}s")
        for backend in backends:
            _bench_backend(backend, source, directory, args.periods, args.pg, args.repeats, console)
    table = Table(title="compile_query, median of 50 (should stay flat as the model grows)")
    for heading in ("model", "metrics in registry", "compile ms"):
        table.add_column(heading, justify="left" if heading == "model" else "right")
    for model, count, seconds in compile_times():
        table.add_row(model, str(count), f"{seconds * 1000:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
