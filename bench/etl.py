"""ETL benchmark: the initial load rate and an incremental run, into DuckDB and PostgreSQL warehouses.

Generates one demo source (SQLite) at ``--scale``, loads it into each
warehouse, advances the source by one day of activity (new rows, resolved
contracts and approvals, renamed members, late commits: about 3.5% of the
source at the same scale) and times the incremental run that catches up, then
a run with nothing new. The PostgreSQL warehouse is a database of its own,
``gm_bench_<random>``, dropped at the end.

    .venv/bin/python bench/etl.py                          # scale 50: 1M contracts, ~2.3M source rows
    .venv/bin/python bench/etl.py --scale 5 --backends duckdb
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from warehouse.demo import advance_demo_source, generate_demo_source
from warehouse.etl import EtlResult, run_etl
from warehouse.source import source_metadata

HASH_KEY = "bench"
PG_ADMIN_URL = os.environ.get("GRACE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T = TypeVar("T")


def timed(function: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


@dataclass
class Figures:
    """One warehouse's runs: the initial load, the incremental run after the advance, a run with nothing new."""

    backend: str
    initial: EtlResult | None = None
    initial_s: float = 0.0
    incremental: EtlResult | None = None
    incremental_s: float = 0.0
    noop_s: float = 0.0


def rows_read(result: EtlResult | None) -> int:
    return sum(table.rows_read for table in result.tables) if result else 0


def rows_changed(result: EtlResult | None) -> int:
    return sum(table.rows_inserted + table.rows_updated for table in result.tables) if result else 0


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


@dataclass
class Advance:
    new_rows: int
    changed: int
    """Rows inserted or updated."""
    seconds: float


def source_rows(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        total = sum(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() for table in source_metadata.sorted_tables)
    engine.dispose()
    return total


def report(console: Console, scale: float, rows: int, generate_s: float, advance: Advance, figures: list[Figures]) -> None:
    table = Table(title=f"ETL, demo scale {scale:g}: {rows:,} source rows (generated in {generate_s:.1f}s)")
    for heading in ("warehouse", "rows", "load s", "rows/s", "incr. read", "incr. changed", "incr. s", "no-op s"):
        table.add_column(heading, justify="left" if heading == "warehouse" else "right")
    for f in figures:
        table.add_row(
            f.backend,
            f"{rows_read(f.initial):,}",
            f"{f.initial_s:.1f}",
            f"{rows_read(f.initial) / f.initial_s:,.0f}",
            f"{rows_read(f.incremental):,}",
            f"{rows_changed(f.incremental):,}",
            f"{f.incremental_s:.1f}",
            f"{f.noop_s:.1f}",
        )
    console.print(table)
    updated = advance.changed - advance.new_rows
    console.print(
        f"advance by one day: {advance.new_rows:,} new source rows ({advance.new_rows / rows:.1%}) and {updated:,} updated "
        f"in {advance.seconds:.1f}s. Incremental rows read include the 5-minute late-commit overlap; no-op is a run with "
        "nothing new.",
        highlight=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=50, help="demo scale; 1 = 20,000 action contracts (default 50)")
    parser.add_argument("--backends", default="duckdb,postgresql", help="comma-separated warehouses (default duckdb,postgresql)")
    parser.add_argument("--pg", default=PG_ADMIN_URL, help="PostgreSQL server (any database) to create the bench database on")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, help="where the source and DuckDB files go (default: a temporary directory)")
    args = parser.parse_args()
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    console = Console(width=None if sys.stdout.isatty() else 110)
    directory = Path(tempfile.mkdtemp(prefix="gm_bench_", dir=args.dir))
    try:
        source = f"sqlite:///{directory / 'source.sqlite'}"
        with console.status(f"generating the demo source at scale {args.scale:g}"):
            written, generate_s = timed(lambda: generate_demo_source(source, seed=args.seed, scale=args.scale))
        rows = sum(written.values())
        console.print(f"source: {rows:,} rows in {generate_s:.1f}s")
        figures = [Figures(backend) for backend in backends]
        with ExitStack() as stack:
            warehouses = [stack.enter_context(warehouse_for(backend, directory, args.pg)) for backend in backends]
            for f, warehouse in zip(figures, warehouses, strict=True):
                with console.status(f"initial load into {f.backend}"):
                    f.initial, f.initial_s = timed(lambda w=warehouse: run_etl(source, w, hash_key=HASH_KEY))
                console.print(f"{f.backend}: initial load of {rows_read(f.initial):,} rows in {f.initial_s:.1f}s")
            with console.status("advancing the source by one day"):
                changed, advance_s = timed(lambda: advance_demo_source(source, step=1, seed=args.seed, scale=args.scale))
            advance = Advance(source_rows(source) - rows, sum(changed.values()), advance_s)
            console.print(f"advance: {advance.changed:,} rows inserted or updated in {advance_s:.1f}s")
            for f, warehouse in zip(figures, warehouses, strict=True):
                with console.status(f"incremental run on {f.backend}"):
                    f.incremental, f.incremental_s = timed(lambda w=warehouse: run_etl(source, w, hash_key=HASH_KEY))
                    _, f.noop_s = timed(lambda w=warehouse: run_etl(source, w, hash_key=HASH_KEY))
        report(console, args.scale, rows, generate_s, advance, figures)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
