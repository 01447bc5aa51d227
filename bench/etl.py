"""ETL benchmark: initial load rate and an incremental run, into DuckDB and PostgreSQL warehouses.

    .venv/bin/python bench/etl.py --scale 50          # 1M verifications, ~2.3M source rows
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from warehouse.demo import advance_demo_source, generate_demo_source
from warehouse.etl import EtlResult, run_etl


def timed_run(source: str, warehouse: str) -> tuple[EtlResult, float]:
    started = time.perf_counter()
    result = run_etl(source, warehouse, hash_key="bench")
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=50, help="demo scale; 50 = 1M verifications (default)")
    parser.add_argument("--backends", default="duckdb,postgresql")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1/test", help="PostgreSQL server to create a bench database on")
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"ETL, scale {args.scale:g}")
    for heading in ("warehouse", "initial rows", "initial s", "rows/s", "incremental rows", "incremental s", "rerun s"):
        table.add_column(heading, justify="left" if heading == "warehouse" else "right")
    admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with tempfile.TemporaryDirectory() as directory:
        for backend in args.backends.split(","):
            source = f"sqlite:///{directory}/source-{backend}.sqlite"
            started = time.perf_counter()
            generate_demo_source(source, scale=args.scale)
            console.print(f"generated scale {args.scale:g} in {time.perf_counter() - started:.0f}s")
            database = f"gm_bench_{uuid.uuid4().hex[:8]}"
            if backend == "duckdb":
                warehouse = f"duckdb:///{directory}/warehouse.duckdb"
            else:
                with admin.connect() as connection:
                    connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
                warehouse = admin.url.set(database=database).render_as_string(hide_password=False)
            try:
                initial, initial_s = timed_run(source, warehouse)
                advance_demo_source(source, step=1, scale=args.scale)
                incremental, incremental_s = timed_run(source, warehouse)
                _, rerun_s = timed_run(source, warehouse)
            finally:
                with admin.connect() as connection:
                    connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            rows = sum(t.rows_read for t in initial.tables)
            changed = sum(t.rows_inserted + t.rows_updated for t in incremental.tables)
            table.add_row(backend, f"{rows:,}", f"{initial_s:.1f}", f"{rows / initial_s:,.0f}", f"{changed:,}", f"{incremental_s:.1f}", f"{rerun_s:.1f}")
    console.print(table)


if __name__ == "__main__":
    main()
