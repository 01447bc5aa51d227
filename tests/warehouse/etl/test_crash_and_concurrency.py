"""A killed ETL leaves nothing half-done; two at once end as one. Real processes, SIGKILL, real databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.warehouse.conftest import HASH_KEY, query, snapshot
from warehouse.demo import advance_demo_source, generate_demo_source
from warehouse.etl import run_etl

pytestmark = pytest.mark.slow
SCALE = 2.0


def _etl(source: str, warehouse: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "graphql_api.cli", "etl", "--source", source, "--warehouse", warehouse, "--quiet"]
    return subprocess.Popen(command, env={**os.environ, "GRACE_METRICS_HASH_KEY": HASH_KEY}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('crash') / 'source.sqlite'}"
    generate_demo_source(url, scale=SCALE)
    return url


def _warehouse(kind: str, tmp_path: Path, pg_database: Callable[[], str], name: str) -> str:
    return f"duckdb:///{tmp_path / name}.duckdb" if kind == "duckdb" else pg_database()


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_killed_runs_leave_the_warehouse_as_a_clean_run_would(kind: str, demo_source: str, tmp_path: Path, pg_database: Callable[[], str]) -> None:
    clean = _warehouse(kind, tmp_path, pg_database, "clean")
    run_etl(demo_source, clean, hash_key=HASH_KEY)
    crashed = _warehouse(kind, tmp_path, pg_database, "crashed")
    kills = 0
    for delay in (0.5, 1.2, 2.0):
        process = _etl(demo_source, crashed)
        time.sleep(delay)
        if process.poll() is None:  # only a kill mid-run proves anything
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
    assert kills >= 2, "the ETL finished before it could be killed; raise SCALE"
    assert _etl(demo_source, crashed).wait() == 0
    assert snapshot(crashed) == snapshot(clean)
    statuses = [status for (status,) in query(crashed, "SELECT status FROM etl_runs ORDER BY started_at")]
    assert statuses[-1] == "succeeded" and "running" not in statuses


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_a_killed_incremental_run_loses_no_update(kind: str, tmp_path: Path, pg_database: Callable[[], str]) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    generate_demo_source(source, scale=SCALE)
    clean, crashed = (_warehouse(kind, tmp_path, pg_database, name) for name in ("clean", "crashed"))
    for warehouse in (clean, crashed):
        run_etl(source, warehouse, hash_key=HASH_KEY)
    advance_demo_source(source, step=1, scale=SCALE * 8)
    process = _etl(source, crashed)
    time.sleep(0.8)
    killed = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert killed, "the incremental run finished before it could be killed"
    run_etl(source, clean, hash_key=HASH_KEY)
    run_etl(source, crashed, hash_key=HASH_KEY)
    assert snapshot(crashed) == snapshot(clean)


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_two_runs_at_once_end_as_one(kind: str, demo_source: str, tmp_path: Path, pg_database: Callable[[], str]) -> None:
    clean = _warehouse(kind, tmp_path, pg_database, "clean")
    run_etl(demo_source, clean, hash_key=HASH_KEY)
    together = _warehouse(kind, tmp_path, pg_database, "together")
    first, second = _etl(demo_source, together), _etl(demo_source, together)
    assert (first.wait(), second.wait()) == (0, 0), (first.stderr.read(), second.stderr.read())  # type: ignore[union-attr]
    assert snapshot(together) == snapshot(clean)
    [(contracts,)] = query(together, "SELECT count(*) FROM fact_verifications")
    assert contracts == int(20_000 * SCALE)
