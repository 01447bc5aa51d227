"""Access benchmark: what policy enforcement and the audit log add to a request (target: under 1 ms at p50).

Over HTTP: one demo DuckDB warehouse (read-only), served by several server
processes at once (``graphql_api.server``'s socket, uvicorn with httptools and
uvloop, as ``grace-metrics serve``): one without an audit log, one keeping it
in a DuckDB file, one in PostgreSQL (and with ``--baseline``, the same two
from another checkout, so before and after meet the same load). Clients post
the same GraphQL request in blocks that rotate over the servers, so that the
load of a shared machine falls on all alike: one client at a time (a lone
request's latency), then ``--clients`` concurrent keep-alive clients (what
group commit is for: the entries of concurrent requests share one commit).

- "added ms": the HTTP p50 minus that of the server without an audit log, at
  the same concurrency (on a loaded machine, mostly noise);
- "audit wait": measured inside the server, how long each request waited for
  its audit entry to be committed: exactly what the log adds to its latency;
- "req/s": requests over the blocks' wall time.

A scoped caller (a policy with a row filter) against an admin on the same
server gives the policy's part, and ``compile_query`` with and without the
caller's scope isolates the compiler's.

    .venv/bin/python bench/access.py                         # demo scale 0.2, PostgreSQL at 127.0.0.1
    .venv/bin/python bench/access.py --rounds 20 --clients 16
    .venv/bin/python bench/access.py --postgresql postgresql://postgres@127.0.0.1/postgres --fast-audit
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
from rich.console import Console
from rich.table import Table

from metrics.compiler import DimensionRef, MetricRequest, compile_query
from metrics.policy import load_policies
from metrics.registry import config_directories, load_registry
from warehouse.demo import generate_demo_source
from warehouse.etl import run_etl

sys.path.insert(0, str(Path(__file__).parent))
from api import _free_port, _wait_until_up  # noqa: E402 - bench/api.py starts servers the same way
from etl import warehouse_for  # noqa: E402 - and bench/etl.py makes PostgreSQL databases

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
NO_AUDIT = "off"


def _token(**claims: object) -> str:
    return jwt.encode({"sub": "bench", "exp": time.time() + 86_400, **claims}, SECRET, algorithm="HS256")


CALLERS = {
    "admin": _token(role="admin"),
    "scoped": _token(role="analyst", groups=["support"], agent_types=["support", "data"]),
}


def _serve(port: int, warehouse: str, config: str, audit: str, durable: bool) -> None:
    """The server process: ``grace-metrics serve``'s app, plus ``/bench/audit-waits``: how long each request waited
    for its audit entry since the last call (what the audit log adds to it, free of the client's noise). With
    ``audit`` "off", its audit writer is taken away once started (the product has no such switch)."""
    import uvicorn
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from graphql_api.app import create_app
    from graphql_api.audit import AuditWriter
    from graphql_api.server import listen
    from graphql_api.settings import AccessSettings, Settings

    access = AccessSettings(jwt_secret=SECRET, audit_durable=durable, audit_url=None if audit == NO_AUDIT else audit)
    if audit == NO_AUDIT:
        access = replace(access, audit_url=f"duckdb:///{Path(config).parent / f'unused-{port}.duckdb'}")
    settings = Settings(warehouse_url=warehouse, config_dirs=(Path(config),), access=access)
    app = create_app(settings, load_registry([Path(config)]))
    waits: list[float] = []
    write = AuditWriter.write

    async def timed(self: AuditWriter, entry: object) -> None:
        started = time.perf_counter()
        try:
            await write(self, entry)  # type: ignore[arg-type]
        finally:
            waits.append(time.perf_counter() - started)

    async def taken(request: object) -> JSONResponse:
        answer = JSONResponse(list(waits))
        waits.clear()
        return answer

    AuditWriter.write = timed  # type: ignore[method-assign]
    app.router.routes.insert(0, Route("/bench/audit-waits", taken))
    lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def without_audit(app_):  # type: ignore[no-untyped-def]
        async with lifespan(app_):
            app_.state.graphql.audit = None
            yield

    if audit == NO_AUDIT:
        app.router.lifespan_context = without_audit
    with listen("127.0.0.1", port) as sock:
        config_ = uvicorn.Config(app, log_level="warning", http="httptools", loop="uvloop")
        uvicorn.Server(config_).run(sockets=[sock])


@contextlib.contextmanager
def _server(warehouse: str, config: Path, audit: str, durable: bool, tree: Path | None = None) -> Iterator[str]:
    """A server process; ``tree``: run the code of that checkout instead (before and after in one run)."""
    port = _free_port()
    command = [sys.executable, __file__, "--serve", str(port), warehouse, str(config), audit, str(int(durable))]
    env = {**os.environ, **({"PYTHONPATH": str(tree)} if tree else {})}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            yield _wait_until_up(f"http://127.0.0.1:{port}", process, log)
        finally:
            process.terminate()
            process.wait(timeout=30)


async def _block(client: httpx.AsyncClient, token: str, clients: int, each: int) -> tuple[list[float], float]:
    """``clients`` concurrent clients posting ``each`` requests one after another; latencies and wall seconds."""
    headers = {"authorization": f"Bearer {token}"}
    latencies: list[float] = []

    async def one_client() -> None:
        for _ in range(each):
            started = time.perf_counter()
            response = await client.post("/graphql", json={"query": QUERY}, headers=headers)
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200 and "errors" not in response.json(), response.text

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies, time.perf_counter() - started


Samples = dict[tuple[str, str, int], dict[str, list[float]]]


async def _measure(bases: dict[str, str], rounds: int, clients: int) -> Samples:
    """Per (server, caller, concurrency): the HTTP latencies, the server's audit waits and the blocks' wall times."""
    samples: Samples = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    http = {name: httpx.AsyncClient(base_url=base, timeout=60, limits=limits) for name, base in bases.items()}
    try:
        names = list(bases)
        for round_ in range(rounds + 1):  # round 0 warms up connections, caches and schemas
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                for caller, token in CALLERS.items():
                    for concurrency, each in ((1, 20), (clients, 10)):
                        await http[name].get("/bench/audit-waits")
                        latencies, wall = await _block(http[name], token, concurrency, each)
                        waits = (await http[name].get("/bench/audit-waits")).json()
                        if round_:
                            sample = samples.setdefault(
                                (name, caller, concurrency), {"http": [], "audit": [], "wall": []}
                            )
                            sample["http"] += latencies
                            sample["audit"] += waits
                            sample["wall"].append(wall)
    finally:
        for client in http.values():
            await client.aclose()
    return samples


def _append_costs(
    stores: dict[str, tuple[str, str]], baseline: Path | None, repeats: int = 200
) -> dict[tuple[str, str, int], tuple[float, float]]:
    """Per (store, code, batch size): the p50 wall and thread-CPU milliseconds of one ``AuditLog.append``, in this
    process (no HTTP, no event loop), the codes interleaved, each on its own store. The wall time is mostly the
    commit's wait for the disk, and the CPU time the code's own work."""
    from warehouse import audit

    codes = {"current": audit}
    if baseline is not None:
        spec = importlib.util.spec_from_file_location("baseline_audit", baseline / "warehouse" / "audit.py")
        assert spec is not None and spec.loader is not None
        codes["baseline"] = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(codes["baseline"])
    entry = audit.Entry(
        datetime.now(UTC), "key:bench", "admin", None, "OK", 3.0, metrics=("error_count",), rows_returned=4
    )
    costs = {}
    for store, urls in stores.items():
        logs = {code: module.AuditLog(url) for (code, module), url in zip(codes.items(), urls, strict=False)}
        for log in logs.values():
            log.create()
        for size in (1, 8):
            samples: dict[str, list[tuple[float, float]]] = {code: [] for code in logs}
            for _ in range(repeats):
                for code, log in logs.items():
                    wall, cpu = time.perf_counter(), time.thread_time()
                    log.append([entry] * size)
                    samples[code].append((time.perf_counter() - wall, time.thread_time() - cpu))
            for code, pairs in samples.items():
                walls, cpus = zip(*pairs, strict=True)
                costs[store, code, size] = statistics.median(walls) * 1000, statistics.median(cpus) * 1000
        for log in logs.values():
            log.close()
    return costs


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


def _report(samples: Samples, console: Console) -> None:
    table = Table(title="per request over HTTP (DuckDB warehouse; the audit log where the server name says)")
    columns = ("server", "caller", "clients", "p50 ms", "added ms", "audit wait p50 ms", "audit wait p95 ms", "req/s")
    for column in columns:
        table.add_column(column, justify="left" if column in ("server", "caller") else "right")
    for (name, caller, concurrency), sample in samples.items():
        p50 = statistics.median(sample["http"]) * 1000
        baseline = statistics.median(samples[NO_AUDIT, "admin", concurrency]["http"]) * 1000
        waits = sample["audit"] or [0.0, 0.0]
        table.add_row(
            name,
            caller,
            str(concurrency),
            f"{p50:.2f}",
            f"{p50 - baseline:+.2f}",
            f"{statistics.median(waits) * 1000:.2f}" if sample["audit"] else "-",
            f"{statistics.quantiles(waits, n=20)[-1] * 1000:.2f}" if sample["audit"] else "-",
            f"{len(sample['http']) / sum(sample['wall']):.0f}",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.2, help="demo scale of the warehouse (default 0.2)")
    parser.add_argument("--rounds", type=int, default=10, help="rotations over the servers (default 10)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the concurrent blocks")
    parser.add_argument(
        "--postgresql",
        default="postgresql://postgres@127.0.0.1/postgres",
        help="where to create the PostgreSQL audit database",
    )
    parser.add_argument(
        "--fast-audit", action="store_true", help="GRACE_METRICS_AUDIT_DURABLE=false (PostgreSQL: no flush per append)"
    )
    parser.add_argument(
        "--baseline", type=Path, help="another checkout (e.g. `git worktree add /tmp/main main`): its servers too"
    )
    parser.add_argument("--appends-only", action="store_true", help="only the in-process append costs (no servers)")
    parser.add_argument("--serve", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        port, warehouse, config, audit, durable = args.serve
        _serve(int(port), warehouse, config, audit, durable == "1")
        return
    console = Console()
    trees = {"": None, **({" (baseline)": args.baseline} if args.baseline else {})}
    with tempfile.TemporaryDirectory() as directory, contextlib.ExitStack() as stack:
        root = Path(directory)
        config = root / "config"
        config.mkdir()
        (config / "policies.yaml").write_text(POLICIES)
        if not args.appends_only:
            source = f"sqlite:///{root / 'source.sqlite'}"
            generate_demo_source(source, scale=args.scale)
            warehouse = f"duckdb:///{root / 'warehouse.duckdb'}"
            run_etl(source, warehouse, hash_key="bench")
            servers = {NO_AUDIT: _server(warehouse, config, NO_AUDIT, True)}
            for label, tree in trees.items():  # each its own audit store: one chain has one kind of writer
                pg_audit = stack.enter_context(warehouse_for("postgresql", root, args.postgresql))
                for name, store in (
                    ("DuckDB", f"duckdb:///{root / f'audit{len(servers)}.duckdb'}"),
                    ("PostgreSQL", pg_audit),
                ):
                    servers[f"audit in {name}{label}"] = _server(warehouse, config, store, not args.fast_audit, tree)
            with contextlib.ExitStack() as running:
                bases = {name: running.enter_context(server) for name, server in servers.items()}
                _report(asyncio.run(_measure(bases, args.rounds, args.clients)), console)
        stores = {
            "DuckDB": (f"duckdb:///{root / 'appends.duckdb'}", f"duckdb:///{root / 'appends-baseline.duckdb'}"),
            "PostgreSQL": tuple(stack.enter_context(warehouse_for("postgresql", root, args.postgresql)) for _ in "ab"),
        }
        appends = Table(title="one AuditLog.append in process: p50 ms (wall: mostly the commit's wait for the disk)")
        for column in ("store", "code", "entries", "wall ms", "CPU ms"):
            appends.add_column(column, justify="left" if column in ("store", "code") else "right")
        for (store, code, size), (wall, cpu) in _append_costs(stores, args.baseline).items():
            appends.add_row(store, code, str(size), f"{wall:.3f}", f"{cpu:.3f}")
        console.print(appends)
        plain, scoped = _compile_times(config)
    console.print(f"compile_query {plain * 1e6:.0f} µs unscoped, {scoped * 1e6:.0f} µs scoped")


if __name__ == "__main__":
    main()
