"""A warehouse that stops answering, and stopping a server whose requests are stuck.

The shared PostgreSQL cannot be frozen, so these tests start their own cluster
(initdb in a temporary directory, a free port), run by the ``postgres`` OS user
when the tests run as root (initdb refuses root), and freeze it with SIGSTOP.
Requests and /healthz must answer within their limits (UNAVAILABLE, 503 with
Retry-After) whatever the database does, the server must recover once it runs
again, and SIGTERM must stop a server within its graceful timeout even when a
request is stuck, on a hung PostgreSQL or in a long DuckDB query.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from graphql_api.app import HEALTH_TIMEOUT
from metrics.backends import ANSWER_GRACE
from tests.conftest import in_ci
from tests.graphql_api.conftest import free_port
from tests.graphql_api.test_server import wait_until_up
from tests.small_source import build_source
from warehouse.etl import run_etl

pytestmark = pytest.mark.slow

STATEMENT_TIMEOUT = 2.0
REQUEST_LIMIT = STATEMENT_TIMEOUT + ANSWER_GRACE + 2.0
"""What a request may take when the warehouse is frozen: its statement's limit, the grace, and slack for a busy CI."""
COUNT = "{ metrics { rows { verificationCount } } }"


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


@dataclass
class Cluster:
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def processes(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, ...): all of them must stop to hang it."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
        return [postmaster, *children]

    def signal(self, number: signal.Signals) -> None:
        for pid in self.processes():
            try:
                os.kill(pid, number)
            except ProcessLookupError:
                continue  # a backend that ended meanwhile

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    binaries = _postgres_bin()
    if binaries is None:
        message = "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="gm-frozen-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to the postgres OS user
        shutil.chown(root, "postgres", "postgres")
        as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
    data = root / "data"
    server = None
    try:
        subprocess.run(
            [*as_postgres, str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"],
            check=True,
            capture_output=True,
        )
        port = free_port()
        with (root / "log").open("wb") as log:
            server = subprocess.Popen(
                [*as_postgres, str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root)]
                + ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        cluster = Cluster(data, port)
        _wait_for_postgres(cluster, server, root / "log")
        yield cluster
    finally:
        if server is not None:
            if (data / "postmaster.pid").exists():
                Cluster(data, 0).signal(signal.SIGCONT)
            server.send_signal(signal.SIGINT)  # fast shutdown
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_postgres(cluster: Cluster, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert server.poll() is None, log.read_text()
        try:
            sa.create_engine(cluster.url, poolclass=sa.pool.NullPool).connect().close()
            return
        except sa.exc.OperationalError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)


@dataclass
class Running:
    base: str
    process: subprocess.Popen[bytes]
    log: Path
    client: httpx.Client
    """One client for every thread: a client per request spends more time on TLS setup than the server on answering."""

    def post(self, query: str = COUNT, timeout: float = 120) -> httpx.Response:
        return self.client.post(f"{self.base}/graphql", json={"query": query}, timeout=timeout)

    def health(self) -> httpx.Response:
        return self.client.get(f"{self.base}/healthz", timeout=60)


def _serve(tmp_path: Path, warehouse: str, **env: str) -> Iterator[Running]:
    port = free_port()
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "graphql_api.cli", "serve", "--port", str(port), "--warehouse", warehouse]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", process, log)
        with httpx.Client(limits=httpx.Limits(max_connections=50)) as client:
            yield Running(f"http://127.0.0.1:{port}", process, log, client)
    finally:
        process.kill()
        process.wait()


def _loaded(cluster: Cluster, tmp_path: Path) -> str:
    """A database of the cluster holding the small source's warehouse; its asyncpg URL."""
    url = cluster.create_database(f"w{free_port()}")
    source = build_source(f"sqlite:///{tmp_path / 'source.sqlite'}")
    run_etl(source.url, url, hash_key="k")
    source.dispose()
    return url.replace("+psycopg", "+asyncpg")


def _timed(call: object) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    response = call()  # type: ignore[operator]
    return time.monotonic() - started, response


def test_a_frozen_warehouse_is_unavailable_within_the_limits_and_the_server_recovers(
    cluster: Cluster, tmp_path: Path
) -> None:
    url = _loaded(cluster, tmp_path)
    audit = f"duckdb:///{tmp_path / 'audit.duckdb'}"  # the warehouse is what freezes here, not the audit log
    for server in _serve(
        tmp_path, url, GRACE_METRICS_STATEMENT_TIMEOUT=str(STATEMENT_TIMEOUT), GRACE_METRICS_AUDIT_URL=audit
    ):
        assert server.post().json()["data"] == {"metrics": {"rows": [{"verificationCount": 60}]}}
        cluster.signal(signal.SIGSTOP)
        try:
            # More requests than pooled connections: some wait for a connection, some for an answer.
            calls = [server.post] * 14 + [server.health] * 2
            with ThreadPoolExecutor(len(calls)) as pool:
                answers = list(pool.map(_timed, calls))
            late = _timed(server.post)  # after the pool dropped its silent connections: a new one cannot connect
        finally:
            cluster.signal(signal.SIGCONT)
        for elapsed, response in [*answers[:14], late]:
            error = response.json()["errors"][0]
            assert (response.status_code, error["extensions"]["code"], response.headers["retry-after"]) == (
                503,
                "UNAVAILABLE",
                "5",
            ), response.text
            assert "did not answer" in error["message"] and elapsed < REQUEST_LIMIT, (elapsed, response.text)
        for elapsed, response in answers[14:]:
            body = response.json()  # no API keys configured: everyone is admin and sees the detail
            assert (response.status_code, body["status"], body["warehouse"]) == (503, "error", "unavailable")
            assert "did not answer within" in body["detail"]
            assert elapsed < HEALTH_TIMEOUT + 1, elapsed
        deadline = time.monotonic() + 30
        while (response := server.post(timeout=30)).status_code != 200:
            assert time.monotonic() < deadline, response.text
            time.sleep(0.5)
        assert response.json()["data"] == {"metrics": {"rows": [{"verificationCount": 60}]}}
        assert server.health().status_code == 200


def _stops_within(server: Running, seconds: float, query: str = COUNT) -> None:
    """SIGTERM while a request is stuck: the server exits within ``seconds``, the request is cut off with a 503."""
    with ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(server.post, query)
        time.sleep(1)
        assert not stuck.done(), "the request was meant to be stuck"
        started = time.monotonic()
        server.process.terminate()
        try:
            server.process.wait(timeout=seconds + 30)
        finally:
            took = time.monotonic() - started
        cut_off = stuck.result()
    assert (cut_off.status_code, cut_off.headers["retry-after"]) == (503, "5"), cut_off.text
    assert cut_off.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE" and "shutting down" in cut_off.text
    assert took < seconds, (took, server.log.read_text())


def test_sigterm_stops_a_server_whose_request_hangs_on_a_frozen_warehouse(cluster: Cluster, tmp_path: Path) -> None:
    url = _loaded(cluster, tmp_path)
    for server in _serve(tmp_path, url, GRACE_METRICS_STATEMENT_TIMEOUT="60", GRACE_METRICS_SHUTDOWN_TIMEOUT="1"):
        cluster.signal(signal.SIGSTOP)
        try:
            _stops_within(server, 1 + 3)
        finally:
            cluster.signal(signal.SIGCONT)


def test_sigterm_stops_a_server_whose_request_runs_a_long_duckdb_query(tmp_path: Path) -> None:
    source = build_source(f"sqlite:///{tmp_path / 'source.sqlite'}")
    warehouse = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    run_etl(source.url, warehouse, hash_key="k")
    source.dispose()
    engine = sa.create_engine(warehouse, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:  # enough rows for percentiles per Berlin minute to take many seconds
        connection.execute(
            sa.text(
                "INSERT INTO fact_verifications (contract_id, created_at, source_updated_at, duration_ms) "
                "SELECT 'heavy' || i, TIMESTAMP '2020-01-01' + to_seconds(i), TIMESTAMP '2020-01-01', i % 997 "
                "FROM range(10000000) t(i)"
            )
        )
    engine.dispose()
    env = {"GRACE_METRICS_STATEMENT_TIMEOUT": "120", "GRACE_METRICS_SHUTDOWN_TIMEOUT": "1"}
    for server in _serve(tmp_path, warehouse, **env):
        heavy = (
            '{ metrics(timezone: "Europe/Berlin") { rows { time(grain: MINUTE) p99VerificationDurationMs '
            "p50VerificationDurationMs } } }"
        )
        _stops_within(server, 1 + 3, heavy)
