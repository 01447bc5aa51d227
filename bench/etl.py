"""ETL benchmark: the initial load rate and incremental runs, into DuckDB and PostgreSQL warehouses.

Generates one demo source (SQLite) at ``--scale`` and, per warehouse, times:

- the initial load of the source without its newest 1% of rows (by ``updated_at``);
- the incremental run that picks up that 1%;
- the run after the source advances by one day of activity (new rows,
  resolved contracts and approvals, renamed members, late commits);
- a run with nothing new, in a new process and again in one that has run the ETL before;

each in a process of its own, so its peak resident memory is its own. Then,
unless ``--freshness 0``, the freshness of a server running the ETL every 5
seconds (``serve --etl-every 5`` on the DuckDB warehouse): rows are committed
to the source one at a time and a GraphQL client polls until each is counted;
the report gives the median and the longest delay from commit to answer.

The PostgreSQL warehouse is a database of its own, ``gm_bench_<random>``,
dropped at the end.

    .venv/bin/python bench/etl.py                          # scale 50: 1M contracts, ~2.3M source rows
    .venv/bin/python bench/etl.py --scale 5 --backends duckdb --freshness 0
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from warehouse.demo import advance_demo_source, generate_demo_source
from warehouse.etl import EtlResult, run_etl
from warehouse.etl.values import utc_timestamp
from warehouse.source import source_metadata

HASH_KEY = "bench"
PG_ADMIN_URL = os.environ.get("GRACE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T = TypeVar("T")


def timed(function: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


PHASES = ("initial load", "newest 1%", "one more day", "nothing new", "nothing new, warm")
"""``nothing new, warm``: a second run in the same process, as ``serve --etl-every`` runs it (imports, engine
set-up and compiled queries already paid for)."""


@dataclass
class Run:
    backend: str
    phase: str
    result: EtlResult
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float

    @property
    def rows_read(self) -> int:
        return sum(table.rows_read for table in self.result.tables)

    @property
    def rows_changed(self) -> int:
        return sum(table.rows_inserted + table.rows_updated for table in self.result.tables)


def _peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM, which (unlike ``ru_maxrss``) a spawned child does not inherit."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _etl_in_this_process(source: str, warehouse: str, warm: bool) -> tuple[EtlResult, float, float, float]:
    if warm:
        run_etl(source, warehouse, hash_key=HASH_KEY)
    cpu = _cpu_seconds()
    result, seconds = timed(lambda: run_etl(source, warehouse, hash_key=HASH_KEY))
    return result, seconds, _cpu_seconds() - cpu, _peak_rss_mb()


def etl_in_a_process(source: str, warehouse: str, *, warm: bool = False) -> tuple[EtlResult, float, float, float]:
    """One ETL run in a fresh process: (result, seconds, its CPU seconds, its peak resident memory in MB).

    CPU seconds (all threads of the ETL process, not a PostgreSQL warehouse's server) say more than seconds
    on a machine others share."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_etl_in_this_process, source, warehouse, warm).result()


def hold_back(full: Path, partial: Path, share: float) -> int:
    """Copies the source without its newest ``share`` of rows; returns how many were held back."""
    shutil.copyfile(full, partial)
    engine = sa.create_engine(f"sqlite:///{partial}", poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        stamps = {
            table.name: [
                (rowid, utc_timestamp(updated))
                for rowid, updated in connection.execute(sa.text(f"SELECT rowid, updated_at FROM {table.name}"))
            ]
            for table in source_metadata.sorted_tables
        }
        newest_first = sorted((stamp for rows in stamps.values() for _, stamp in rows), reverse=True)
        cutoff = newest_first[int(len(newest_first) * share)]
        held = 0
        for name, rows in stamps.items():
            newer = [{"rowid": rowid} for rowid, stamp in rows if stamp > cutoff]
            if newer:
                connection.execute(sa.text(f"DELETE FROM {name} WHERE rowid = :rowid"), newer)
            held += len(newer)
    engine.dispose()
    return held


@contextmanager
def warehouse_for(backend: str, directory: Path, pg_admin_url: str) -> Iterator[str]:
    if backend == "duckdb":
        yield f"duckdb:///{directory / 'warehouse.duckdb'}"
        return
    if backend != "postgresql":
        raise SystemExit(f"unknown backend {backend!r}: use duckdb and/or postgresql")
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"gm_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def report(console: Console, scale: float, rows: int, generate_s: float, runs: list[Run]) -> None:
    table = Table(title=f"ETL, demo scale {scale:g}: {rows:,} source rows (generated in {generate_s:.1f}s)")
    for heading in ("warehouse", "run", "rows read", "rows changed", "seconds", "rows read/s", "CPU s", "peak RSS MB"):
        table.add_column(heading, justify="left" if heading in ("warehouse", "run") else "right")
    for run in runs:
        table.add_row(
            run.backend,
            run.phase,
            f"{run.rows_read:,}",
            f"{run.rows_changed:,}",
            f"{run.seconds:.1f}",
            f"{run.rows_read / run.seconds:,.0f}",
            f"{run.cpu_seconds:.2f}",
            f"{run.peak_rss_mb:,.0f}",
        )
    console.print(table)
    console.print(
        "Incremental runs also re-read the 5-minute late-commit overlap; rows changed are facts and members "
        "inserted or updated. Each run is a process of its own; peak RSS is that process's.",
        highlight=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _count(base: str) -> int:
    body = httpx.post(
        f"{base}/graphql",
        json={"query": "{ metrics { rows { queryCount } } }"},
        headers={"authorization": "Bearer bench-key"},
        timeout=30,
    ).json()
    return body["data"]["metrics"]["rows"][0]["queryCount"]


def _insert_query(source: Path, number: int) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(source, timeout=60) as connection:
        connection.execute(
            "INSERT INTO agent_queries (query_id, created_at, agent_name, conversation_id, user_id, latency_ms, "
            "approved, human_edited, error_occurred, result_size_bytes, cost_usd, updated_at) "
            "VALUES (?, ?, 'atlas', 'conv_bench', 'user_bench', 100, NULL, 0, 0, NULL, 0.01, ?)",
            (f"bench_{number}", now, now),
        )
    connection.close()


def freshness(source: Path, warehouse: str, directory: Path, inserts: int) -> list[float]:
    """Seconds from each row's commit to the source until a GraphQL answer counts it, with ``--etl-every 5``."""
    port = _free_port()
    command = [sys.executable, "-m", "graphql_api.cli", "serve", "--port", str(port), "--warehouse", warehouse]
    command += ["--source", f"sqlite:///{source}", "--etl-every", "5", "--hash-key", HASH_KEY]
    environment = {**os.environ, "GRACE_METRICS_API_KEYS": "bench-key:analyst"}
    base = f"http://127.0.0.1:{port}"
    with (directory / "server.log").open("wb") as log:
        server = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                counted = _count(base)
                break
            except (httpx.TransportError, KeyError, TypeError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"the server did not start: {(directory / 'server.log').read_text()}") from None
                time.sleep(0.2)
        committed: list[float] = []
        seen: list[float] = []
        next_insert = time.monotonic()
        while len(seen) < inserts:
            now = time.monotonic()
            if len(committed) < inserts and now >= next_insert:
                _insert_query(source, len(committed))
                committed.append(time.monotonic())
                next_insert = committed[-1] + 0.5
            visible = _count(base) - counted
            seen.extend([time.monotonic()] * (min(visible, len(committed)) - len(seen)))
            if len(seen) < len(committed) and time.monotonic() - committed[len(seen)] > 60:
                raise SystemExit(f"row {len(seen)} committed to the source was not visible within 60s")
            time.sleep(0.05)
        return [visible_at - committed_at for committed_at, visible_at in zip(committed, seen, strict=True)]
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=50, help="demo scale; 1 = 20,000 action contracts (default 50)")
    parser.add_argument(
        "--backends", default="duckdb,postgresql", help="comma-separated warehouses (default duckdb,postgresql)"
    )
    parser.add_argument(
        "--pg", default=PG_ADMIN_URL, help="PostgreSQL server (any database) to create the bench database on"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--freshness", type=int, default=50, help="rows to time from commit to GraphQL answer (default 50; 0: skip)"
    )
    parser.add_argument(
        "--dir", type=Path, help="where the source and DuckDB files go (default: a temporary directory)"
    )
    args = parser.parse_args()
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    console = Console(width=None if sys.stdout.isatty() else 110)
    directory = Path(tempfile.mkdtemp(prefix="gm_bench_", dir=args.dir))
    try:
        full = directory / "source.sqlite"
        with console.status(f"generating the demo source at scale {args.scale:g}"):
            written, generate_s = timed(
                lambda: generate_demo_source(f"sqlite:///{full}", seed=args.seed, scale=args.scale)
            )
        rows = sum(written.values())
        held = hold_back(full, directory / "initial.sqlite", 0.01)
        console.print(f"source: {rows:,} rows in {generate_s:.1f}s; the initial load leaves out the newest {held:,}")
        sources = {
            "initial load": f"sqlite:///{directory / 'initial.sqlite'}",
            "newest 1%": f"sqlite:///{full}",
            "nothing new": f"sqlite:///{full}",
            "nothing new, warm": f"sqlite:///{full}",
            "one more day": f"sqlite:///{full}",
        }
        runs: list[Run] = []
        with ExitStack() as stack:
            warehouses = {
                backend: stack.enter_context(warehouse_for(backend, directory, args.pg)) for backend in backends
            }
            for phase in PHASES:
                if phase == "one more day":
                    with console.status("advancing the source by one day"):
                        advance_demo_source(sources[phase], step=1, seed=args.seed, scale=args.scale)
                for backend, warehouse in warehouses.items():
                    with console.status(f"{phase}: {backend}"):
                        result, seconds, cpu_seconds, peak_rss_mb = etl_in_a_process(
                            sources[phase], warehouse, warm=phase.endswith("warm")
                        )
                    runs.append(Run(backend, phase, result, seconds, cpu_seconds, peak_rss_mb))
                    console.print(
                        f"{backend}, {phase}: {runs[-1].rows_read:,} rows read in {seconds:.2f}s "
                        f"({cpu_seconds:.2f} CPU s), peak RSS {peak_rss_mb:,.0f} MB",
                        highlight=False,
                    )
            delays = []
            if args.freshness and "duckdb" in warehouses:
                with console.status(f"freshness: {args.freshness} rows committed to the source, one every 0.5s"):
                    delays = freshness(full, warehouses["duckdb"], directory, args.freshness)
        report(
            console,
            args.scale,
            rows,
            generate_s,
            sorted(runs, key=lambda run: (backends.index(run.backend), PHASES.index(run.phase))),
        )
        if delays:
            console.print(
                f"Freshness with serve --etl-every 5 (DuckDB): {len(delays)} rows, commit to GraphQL answer "
                f"p50 {statistics.median(delays):.1f}s, max {max(delays):.1f}s",
                highlight=False,
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
