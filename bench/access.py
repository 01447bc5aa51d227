"""Access benchmark: what policy enforcement and the audit log add to a request (target: under 1 ms at p50).

Serves the app in process (httpx over ASGI, no network) over a demo warehouse
and times the same GraphQL request four ways, interleaved so that noise hits
all of them alike: an admin (no policy) without audit, a team-scoped caller
without audit, and both with audit. The differences of medians are the
overheads. Also times ``compile_query`` with and without the caller's scope,
which isolates the compiler's part of the policy cost from execution noise.

    .venv/bin/python bench/access.py                       # DuckDB, demo scale 0.2
    .venv/bin/python bench/access.py --warehouse postgresql+asyncpg://postgres@127.0.0.1/bench --rounds 300
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
import jwt
from rich.console import Console
from rich.table import Table

from graphql_api.app import create_app
from graphql_api.settings import AccessSettings, Settings
from metrics.compiler import DimensionRef, MetricRequest, compile_query
from metrics.policy import load_policies
from metrics.registry import config_directories, load_registry
from warehouse.demo import generate_demo_source
from warehouse.etl import run_etl

SECRET = "bench-secret-of-at-least-thirty-two-bytes"
POLICIES = """
policies:
  - group: support
    metrics: {excludes: [total_cost_usd]}
    dimensions: {excludes: [actor]}
    rows:
      agent.type: {in: "{claims.agent_types}"}
"""
QUERY = "{ metrics { rows { errorCount verificationCount agent { name } } } }"


def _token(**claims: object) -> str:
    return jwt.encode({"sub": "bench", "exp": time.time() + 3600, **claims}, SECRET, algorithm="HS256")


CALLERS = {
    "admin": _token(role="admin"),
    "scoped": _token(role="analyst", groups=["support"], agent_types=["support", "data"]),
}


async def _requests(url: str, config: Path, rounds: int, durable: bool) -> dict[str, list[float]]:
    access = AccessSettings(jwt_secret=SECRET, audit_durable=durable)
    settings = Settings(warehouse_url=url, config_dirs=(config,), access=access)
    app = create_app(settings, load_registry([config]))
    times: dict[str, list[float]] = {}
    async with app.router.lifespan_context(app):
        graphql = app.state.graphql
        writer = graphql.audit
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            for round_ in range(rounds + 5):  # the first rounds warm up caches and schemas
                for audit in (False, True):
                    graphql.audit = writer if audit else None
                    for caller, token in CALLERS.items():
                        started = time.perf_counter()
                        response = await client.post(
                            "/graphql", json={"query": QUERY}, headers={"authorization": f"Bearer {token}"}
                        )
                        elapsed = time.perf_counter() - started
                        assert response.status_code == 200 and "errors" not in response.json(), response.text
                        if round_ >= 5:
                            times.setdefault(f"{caller}, audit {'on' if audit else 'off'}", []).append(elapsed)
    return times


def _compile_times(config: Path, repeats: int = 2000) -> tuple[float, float]:
    registry = load_registry([config])
    scope = load_policies(config_directories([config]), registry).scope(
        registry, ["support"], {"agent_types": ["support", "data"]}
    )
    request = MetricRequest(("error_count", "verification_count"), (DimensionRef.parse("agent.name"),))
    medians = []
    for scoped in (None, scope):
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            compile_query(replace(request, scope=scoped), registry)
            samples.append(time.perf_counter() - started)
        medians.append(statistics.median(samples))
    return medians[0], medians[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", help="an existing warehouse URL (default: a demo DuckDB warehouse)")
    parser.add_argument("--scale", type=float, default=0.2, help="demo scale when no --warehouse (default 0.2)")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument(
        "--fast-audit", action="store_true", help="GRACE_METRICS_AUDIT_DURABLE=false (PostgreSQL: no flush per append)"
    )
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        config = root / "config"
        config.mkdir()
        (config / "policies.yaml").write_text(POLICIES)
        url = args.warehouse
        if url is None:
            source = f"sqlite:///{root / 'source.sqlite'}"
            generate_demo_source(source, scale=args.scale)
            url = f"duckdb:///{root / 'warehouse.duckdb'}"
            run_etl(source, url, hash_key="bench")
        times = asyncio.run(_requests(url, config, args.rounds, not args.fast_audit))
        plain, scoped = _compile_times(config)
    p50 = {name: statistics.median(samples) * 1000 for name, samples in times.items()}
    table = Table(title=f"per-request p50 over {args.rounds} interleaved rounds ({url.split(':')[0]})")
    for column in ("request", "p50 ms", "added ms"):
        table.add_column(column, justify="right" if column != "request" else "left")
    baseline = p50["admin, audit off"]
    for name, value in p50.items():
        table.add_row(name, f"{value:.2f}", f"{value - baseline:+.2f}")
    console.print(table)
    console.print(
        f"policy overhead (scoped - admin, audit off): {p50['scoped, audit off'] - baseline:+.3f} ms; "
        f"audit overhead (admin, on - off): {p50['admin, audit on'] - baseline:+.3f} ms; "
        f"compile_query {plain * 1e6:.0f} us unscoped, {scoped * 1e6:.0f} us scoped"
    )


if __name__ == "__main__":
    main()
