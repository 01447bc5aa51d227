"""``grace-metrics demo``: generated operational data, an embedded warehouse, the API.

The source is built in three steps with an ETL run after each, so the
warehouse holds real history (renamed tiers, changed agents, late rows) the
way a production load would. A ``ready`` file marks a finished build, so an
interrupted one is started over rather than served half-loaded.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rich.console import Console

from graphql_api.console import ProgressBars, print_etl_summary
from graphql_api.rollups import RegistryRollups
from graphql_api.server import serve
from graphql_api.settings import Settings
from metrics.registry import load_registry
from warehouse.demo import advance_demo_source, generate_demo_source
from warehouse.etl import run_etl

DEMO_HASH_KEY = "grace-metrics-demo-key (not a secret: demo data only)"
STEPS = 2


def run_demo(settings: Settings, *, host: str, port: int, directory: Path, scale: float, console: Console) -> None:
    root = directory
    root.mkdir(exist_ok=True)
    source = f"sqlite:///{root / 'grace-demo.sqlite'}"
    warehouse = f"duckdb:///{root / 'warehouse.duckdb'}"
    ready = root / "ready"
    if ready.exists():
        console.print(f"Reusing the demo data in {root}/ (delete it to start over).")
    else:
        for leftover in ("grace-demo.sqlite", "warehouse.duckdb", "warehouse.duckdb.wal"):
            (root / leftover).unlink(missing_ok=True)  # an interrupted build: start it over
        console.print(f"Generating demo data (scale {scale:g}) in {root}/ …")
        with ProgressBars(console) as bars:
            generate_demo_source(source, scale=scale, progress=bars)
        console.print("Loading the warehouse …")
        rollups = RegistryRollups(load_registry(settings.config_dirs))
        with ProgressBars(console) as bars:
            results = [run_etl(source, warehouse, hash_key=DEMO_HASH_KEY, progress=bars, derived=rollups)]
        for step in range(1, STEPS + 1):
            advance_demo_source(source, step=step, scale=scale)
            results.append(run_etl(source, warehouse, hash_key=DEMO_HASH_KEY, derived=rollups))
        print_etl_summary(results, console, f"{len(results)} ETL runs: the full load, then {STEPS} days of activity")
        ready.touch()
    console.print(f"\n[bold]GraphiQL:[/] http://{host}:{port}/graphql   (Ctrl-C to stop)\n")
    serve(replace(settings, warehouse_url=warehouse), host=host, port=port)
