"""API benchmark: GraphQL over HTTP end to end, against hand-written SQL and the engine alone, on the same warehouse.

For each request (issue 11's and bench/query.py's), three medians:

- GraphQL: ``grace-metrics serve`` in its own process, a keep-alive httpx
  client posting the query over loopback (parse, validate, compile, SQL,
  response rows, JSON, HTTP);
- engine: ``MetricsEngine.query`` of the same ``MetricRequest`` in this
  process (compile, SQL, typed values), as a Python pipeline calls it;
- SQL: the question written by hand for the star schema, run through the
  same driver call the engine uses (so both pay the same fetch).

The three alternate per request in rotating order, so the load of a shared
machine falls on all alike; with DuckDB (one process per file) this process
reads a copy of the served file. Ratios are GraphQL / SQL and engine / SQL of the medians, and of the fastest
runs ("min ratio", what an idle machine would show); "µs/row" is the fastest
GraphQL minus the fastest SQL per returned row. Answers are checked to have the same number of rows.

    .venv/bin/python bench/api.py --scale 10                     # 200k verifications, both backends
    .venv/bin/python bench/api.py --scale 50 --backends duckdb   # 1M
    .venv/bin/python bench/api.py --duckdb /tmp/w.duckdb         # reuse a loaded warehouse
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from metrics.compiler import DimensionRef, MetricRequest, Predicate
from metrics.engine import MetricsEngine
from metrics.model import FilterOp
from warehouse.demo import generate_demo_source
from warehouse.etl import run_etl

AS_OF = (
    "LEFT JOIN {table} {alias} ON {alias}.{key} = f.{key} "
    "AND f.created_at >= {alias}.valid_from AND f.created_at < {alias}.valid_to"
)
TIER = AS_OF.format(table="dim_tier", alias="t", key="tier_key")
AGENT = AS_OF.format(table="dim_agent", alias="a", key="agent_key")
SUCCESS = (
    "count(*) FILTER (WHERE f.status = 'verified') * 1.0 "
    "/ nullif(count(*) FILTER (WHERE f.status IN ('verified', 'failed')), 0)"
)
ROLLBACK = (
    "count(*) FILTER (WHERE f.status IN ('verified', 'failed') AND f.rolled_back) * 1.0 "
    "/ nullif(count(*) FILTER (WHERE f.status IN ('verified', 'failed')), 0)"
)


@dataclass(frozen=True)
class Case:
    graphql: str
    request: MetricRequest | None
    sql: str | None


def _ref(text: str) -> DimensionRef:
    return DimensionRef.parse(text)


HOURLY = MetricRequest(
    ("verification_count", "verification_success_rate", "rollback_rate"), (_ref("time.hour"), _ref("tier.name"))
)
CASES = {
    "{ __typename }": Case("{ __typename }", None, None),
    "one row (kpi)": Case(
        "{ metrics { rows { verificationCount } } }",
        MetricRequest(("verification_count",)),
        "SELECT count(*) FROM fact_verifications",
    ),
    "verifications by tier": Case(
        "{ metrics { rows { tier { name } verificationCount } } }",
        MetricRequest(("verification_count",), (_ref("tier.name"),)),
        f"SELECT t.tier_name, count(*) FROM fact_verifications f {TIER} GROUP BY 1 ORDER BY 1",
    ),
    "by tier and day (bench/query)": Case(
        "{ metrics { rows { tier { name } time(grain: DAY) verificationCount verificationSuccessRate } } }",
        MetricRequest(("verification_count", "verification_success_rate"), (_ref("tier.name"), _ref("time.day"))),
        f"SELECT t.tier_name, date_trunc('day', f.created_at), count(*), {SUCCESS} "
        f"FROM fact_verifications f {TIER} GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    "hourly by tier, typed rows (5 fields)": Case(
        "{ metrics { rows { time(grain: HOUR) tier { name } "
        "verificationCount verificationSuccessRate rollbackRate } } }",
        HOURLY,
        f"SELECT date_trunc('hour', f.created_at), t.tier_name, count(*), {SUCCESS}, {ROLLBACK} "
        f"FROM fact_verifications f {TIER} GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    "the same through table": Case(
        '{ table(metrics: ["verificationCount", "verificationSuccessRate", "rollbackRate"], '
        'dimensions: ["time.hour", "tier.name"]) { rows } }',
        HOURLY,
        f"SELECT date_trunc('hour', f.created_at), t.tier_name, count(*), {SUCCESS}, {ROLLBACK} "
        f"FROM fact_verifications f {TIER} GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    "kpis, no dimensions (bench/query)": Case(
        "{ metrics { rows { verificationCount verificationSuccessRate rollbackRate } } }",
        MetricRequest(("verification_count", "verification_success_rate", "rollback_rate")),
        f"SELECT count(*), {SUCCESS}, {ROLLBACK} FROM fact_verifications f",
    ),
    "p95 by agent type, Berlin week (bench/query)": Case(
        '{ metrics(timezone: "Europe/Berlin") '
        "{ rows { agent { type } time(grain: WEEK) p95VerificationDurationMs } } }",
        MetricRequest(
            ("p95_verification_duration_ms",), (_ref("agent.type"), _ref("time.week")), timezone="Europe/Berlin"
        ),
        "SELECT a.agent_type, date_trunc('week', (f.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'Europe/Berlin'), "
        f"percentile_cont(0.95) WITHIN GROUP (ORDER BY f.duration_ms) FROM fact_verifications f {AGENT} "
        "GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    "drill-across by component (bench/query)": Case(
        "{ metrics { rows { component { kernel } errorsPerVerification errorCount } } }",
        MetricRequest(("errors_per_verification", "error_count"), (_ref("component.kernel"),)),
        "WITH e AS (SELECT c.kernel, count(*) AS n FROM fact_errors f "
        "LEFT JOIN dim_component c ON c.component_key = f.component_key GROUP BY 1), "
        "v AS (SELECT c.kernel, count(*) AS n FROM fact_verifications f "
        "LEFT JOIN dim_component c ON c.component_key = f.component_key GROUP BY 1) "
        "SELECT coalesce(e.kernel, v.kernel), coalesce(e.n, 0) * 1.0 / nullif(coalesce(v.n, 0), 0), coalesce(e.n, 0) "
        "FROM e FULL JOIN v ON coalesce(e.kernel, '(none)') = coalesce(v.kernel, '(none)') ORDER BY 1",
    ),
    "filtered by kernel (bench/query)": Case(
        '{ metrics(where: {component: {kernel: {in: ["core", "ingress"]}}}) '
        "{ rows { actionType verificationCount } } }",
        MetricRequest(
            ("verification_count",),
            (_ref("action_type"),),
            where=Predicate(_ref("component.kernel"), FilterOp.IN, ("core", "ingress")),
        ),
        "SELECT f.action_type, count(*) FROM fact_verifications f "
        "LEFT JOIN dim_component c ON c.component_key = f.component_key "
        "WHERE c.kernel IN ('core', 'ingress') GROUP BY 1 ORDER BY 1",
    ),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(url: str) -> Iterator[str]:
    """``grace-metrics serve`` over ``url`` in its own process, until the block ends."""
    port = _free_port()
    command = [sys.executable, "-m", "graphql_api.cli", "serve", "--warehouse", url, "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        try:
            yield _wait_until_up(base, process, log)
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_until_up(base: str, process: subprocess.Popen[bytes], log: Any) -> str:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=2)
            return base
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"the server did not start: {log.read().decode()[-2000:]}") from None
            time.sleep(0.2)


async def _measure(
    base: str, url: str, repeats: int
) -> tuple[dict[str, dict[str, list[float]]], dict[str, tuple[int, int, int]]]:
    """Per request, ``repeats`` timed runs (after a warm-up) of each way, in rotating order, so that the
    shared machine's load falls on all three alike. Returns the seconds per way and the row counts."""
    engine = await MetricsEngine.connect(url)
    seconds: dict[str, dict[str, list[float]]] = {way: {name: [] for name in CASES} for way in WAYS}
    counts: dict[str, tuple[int, int, int]] = {}
    try:
        async with httpx.AsyncClient(base_url=base, timeout=600) as client:

            async def graphql(case: Case) -> int:
                body = (await client.post("/graphql", json={"query": case.graphql})).json()
                if "errors" in body:
                    raise RuntimeError(f"{case.graphql}: {body['errors']}")
                data = next(iter(body["data"].values()))
                return len(data["rows"]) if isinstance(data, dict) else 0

            async def run(way: str, case: Case) -> int:
                if way == "GraphQL":
                    return await graphql(case)
                if way == "engine":
                    return len(await engine.query(case.request))
                return len(await engine.backend.fetch(case.sql, [], timeout=600))

            for name, case in CASES.items():
                ways = WAYS if case.request is not None else ("GraphQL",)
                found = {}
                for attempt in range(repeats + 1):
                    shift = attempt % len(ways)
                    for way in ways[shift:] + ways[:shift]:
                        started = time.perf_counter()
                        found[way] = await run(way, case)
                        if attempt:  # the first is a warm-up
                            seconds[way][name].append(time.perf_counter() - started)
                counts[name] = (found["GraphQL"], found.get("engine", 0), found.get("SQL", 0))
    finally:
        await engine.close()
    return seconds, counts


WAYS = ("GraphQL", "engine", "SQL")


def load_warehouse(backend: str, source: str, directory: str, pg: str) -> tuple[str, sa.Engine | None, str | None]:
    if backend == "duckdb":
        url = f"duckdb:///{directory}/warehouse.duckdb"
        run_etl(source, url, hash_key="bench")
        return url, None, None
    admin = sa.create_engine(pg, isolation_level="AUTOCOMMIT")
    database = f"gm_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
    load_url = admin.url.set(database=database).render_as_string(hide_password=False)
    run_etl(source, load_url, hash_key="bench")
    return load_url.replace("postgresql+psycopg", "postgresql+asyncpg"), admin, database


def bench(url: str, label: str, repeats: int, console: Console) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        mine = url
        if url.startswith("duckdb:///"):  # a DuckDB file has one process: this one reads a copy
            mine = f"duckdb:///{scratch}/copy.duckdb"
            shutil.copy(url.removeprefix("duckdb:///"), mine.removeprefix("duckdb:///"))
        with served(url) as base:
            seconds, counts = asyncio.run(_measure(base, mine, repeats))
    table = Table(title=f"{label} (median of {repeats}, ms)")
    headings = (
        "request",
        "rows",
        "GraphQL",
        "p95",
        "engine",
        "SQL",
        "GraphQL/SQL",
        "engine/SQL",
        "min ratio",
        "µs/row",
    )
    for heading in headings:
        table.add_column(heading, justify="left" if heading == "request" else "right")
    for name, case in CASES.items():
        graphql_s = seconds["GraphQL"][name]
        graphql, p95 = statistics.median(graphql_s) * 1000, statistics.quantiles(graphql_s, n=20)[-1] * 1000
        if case.request is None:
            table.add_row(name, "-", f"{graphql:.2f}", f"{p95:.2f}", "-", "-", "-", "-", "-", "-")
            continue
        rows, answer, raw = counts[name]
        if not rows == answer == raw:
            console.print(f"[red]{name}: rows differ (GraphQL {rows}, engine {answer}, SQL {raw})[/]")
        engine, sql = (statistics.median(seconds[way][name]) * 1000 for way in ("engine", "SQL"))
        fastest, fastest_sql = min(graphql_s) * 1000, min(seconds["SQL"][name]) * 1000
        table.add_row(
            name,
            f"{rows:,}",
            f"{graphql:.1f}",
            f"{p95:.1f}",
            f"{engine:.1f}",
            f"{sql:.1f}",
            f"{graphql / sql:.2f}",
            f"{engine / sql:.2f}",
            f"{fastest / fastest_sql:.2f}",
            f"{(fastest - fastest_sql) * 1000 / rows:.1f}" if rows >= 100 else "-",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=10, help="demo scale; 10 = 200k verifications (default)")
    parser.add_argument("--backends", default="duckdb,postgresql")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per request and way (default 15)")
    parser.add_argument("--source", type=Path, help="SQLite demo source to reuse (generated there if missing)")
    parser.add_argument("--duckdb", type=Path, help="a loaded DuckDB warehouse to use instead of loading one")
    parser.add_argument("--postgresql", help="a loaded PostgreSQL warehouse URL (asyncpg) to use instead")
    parser.add_argument(
        "--pg", default="postgresql+psycopg://postgres@127.0.0.1/test", help="server to create a bench database on"
    )
    args = parser.parse_args()
    console = Console(width=150)
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    with tempfile.TemporaryDirectory() as directory:
        source = f"sqlite:///{args.source or Path(directory) / 'source.sqlite'}"
        given = {"duckdb": args.duckdb and f"duckdb:///{args.duckdb}", "postgresql": args.postgresql}
        if not all(given[b] for b in backends) and not (args.source and args.source.exists()):
            generate_demo_source(source, scale=args.scale)
        for backend in backends:
            admin, database = None, None
            if given[backend]:
                url = given[backend]
            else:
                url, admin, database = load_warehouse(backend, source, directory, args.pg)
            try:
                verifications = asyncio.run(_verifications(url))
                bench(url, f"{backend}, {verifications:,} verifications", args.repeats, console)
            finally:
                if admin is not None:
                    with admin.connect() as connection:
                        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                    admin.dispose()


async def _verifications(url: str) -> int:
    engine = await MetricsEngine.connect(url)
    try:
        [(count,)] = await engine.backend.fetch("SELECT count(*) FROM fact_verifications", [], timeout=60)
        return int(count)
    finally:
        await engine.close()


if __name__ == "__main__":
    main()
