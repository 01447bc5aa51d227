"""Load benchmark: many concurrent clients against a real server over the demo data, per backend.

Starts ``grace-metrics serve`` as its own process on each backend (a DuckDB
file, and a PostgreSQL bench database created and dropped on --pg), then runs
``--clients`` clients for ``--seconds``, each posting a mix of dashboard
queries back to back (a new request as soon as the last one answered). It
reports requests per second, latency percentiles, errors (any non-200 or a
GraphQL error) and the server's resident memory before and after. The client
runs in this process, so on a small machine it competes with the server for
CPU: compare figures taken on the same machine.

    .venv/bin/python bench/load.py                          # 50 clients, 60 s, both backends
    .venv/bin/python bench/load.py --backends duckdb --seconds 20 --clients 10
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from warehouse.demo import generate_demo_source
from warehouse.etl import run_etl

QUERIES = [
    "{ metrics { rows { tier { name } verificationCount verificationSuccessRate p95VerificationDurationMs } } }",
    '{ metrics(where: {time: {from: "2025-01-01T00:00:00Z"}}) { rows { time(grain: DAY) tier { name } '
    "verificationCount verificationSuccessRate } } }",
    '{ metrics(timezone: "Europe/Berlin") { rows { agent { type } time(grain: WEEK) p95VerificationDurationMs } } }',
    "{ metrics { rows { component { kernel } errorsPerVerification errorCount } } }",
    '{ metrics(where: {component: {kernel: {in: ["core", "ingress"]}}}) { rows { verificationCount rollbackRate } } }',
    "{ catalog { metrics { name label unit } } }",
]
"""Typical dashboard requests: KPIs by tier, a daily series, a Berlin-week percentile, a drill-across, a filter."""


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def _server(warehouse: str, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A server process on a free port, up and answering /healthz."""
    port = _free_port()
    command = [sys.executable, "-m", "graphql_api.cli", "serve", "--warehouse", warehouse, "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=os.environ.copy())
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _client(http: httpx.AsyncClient, queries: Iterator[str], until: float, outcome: Outcome) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            response = await http.post("/graphql", json={"query": next(queries)})
            failed = response.status_code != 200 or "errors" in response.json()
            detail = response.text[:200]
        except httpx.HTTPError as error:
            failed, detail = True, f"{type(error).__name__}: {error}"
        outcome.latencies.append(time.perf_counter() - started)
        if failed:
            outcome.errors += 1
            outcome.first_error = outcome.first_error or detail


async def _load(base: str, clients: int, seconds: float) -> tuple[Outcome, float]:
    outcome = Outcome()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as http:
        for query in QUERIES:  # warm-up: every query once, so the first requests do not pay for caches
            await http.post("/graphql", json={"query": query})
        started = time.monotonic()
        until = started + seconds
        await asyncio.gather(
            *(
                _client(http, itertools.islice(itertools.cycle(QUERIES), i, None), until, outcome)
                for i in range(clients)
            )
        )
        return outcome, time.monotonic() - started


def _percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1] if len(values) > 1 else 0


@contextmanager
def _warehouse(backend: str, source: str, directory: str, pg: str) -> Iterator[str]:
    """The warehouse URL the server reads; a PostgreSQL bench database exists only inside this block."""
    if backend == "duckdb":
        url = f"duckdb:///{directory}/warehouse.duckdb"
        run_etl(source, url, hash_key="bench")
        yield url
        return
    admin = sa.create_engine(pg, isolation_level="AUTOCOMMIT")
    database = f"gm_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
    try:
        url = admin.url.set(database=database).render_as_string(hide_password=False)
        run_etl(source, url, hash_key="bench")
        yield url.replace("postgresql+psycopg", "postgresql+asyncpg")
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="duckdb,postgresql")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--scale", type=float, default=1, help="demo data scale (default 1, as `grace-metrics demo`)")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1/test", help="server for a bench db")
    args = parser.parse_args()
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if set(backends) - {"duckdb", "postgresql"}:
        parser.error("--backends takes duckdb and/or postgresql")
    console = Console(width=120)  # the table stays readable when piped
    table = Table(title=f"{args.clients} clients for {args.seconds:g}s over the demo data (scale {args.scale:g})")
    for heading in ("backend", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "RSS MiB before → after"):
        table.add_column(heading, justify="left" if heading == "backend" else "right")
    with tempfile.TemporaryDirectory() as directory:
        source = f"sqlite:///{directory}/source.sqlite"
        generate_demo_source(source, scale=args.scale)
        for backend in backends:
            with (
                _warehouse(backend, source, directory, args.pg) as url,
                _server(url, Path(directory) / f"{backend}.log") as (base, process),
            ):
                before = _rss_mib(process.pid)
                outcome, elapsed = asyncio.run(_load(base, args.clients, args.seconds))
                after = _rss_mib(process.pid)
            times = outcome.latencies
            table.add_row(
                backend,
                f"{len(times):,}",
                f"{len(times) / elapsed:.1f}",
                *(f"{_percentile(times, p) * 1000:.0f}" for p in (0.5, 0.95, 0.99)),
                f"{outcome.errors:,}",
                f"{before:.0f} → {after:.0f}",
            )
            if outcome.first_error:
                console.print(f"{backend}: first error: {outcome.first_error}", highlight=False)
    console.print(table)


if __name__ == "__main__":
    main()
