"""The execution layer: the Python client, the row cap, timeouts that really cancel the query, typed errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import duckdb
import pyarrow as pa
import pytest
import sqlalchemy as sa

import metrics
from metrics import MetricsClient
from metrics.backends import DRIVER_ERRORS, BackendUnavailable, DuckDBBackend, PostgresBackend
from metrics.compiler import DimensionRef, MetricRequest, Predicate
from metrics.engine import CACHED_FILTER_VALUES, EngineSettings, MetricsEngine
from metrics.errors import BackendError, InvalidFilter, LimitExceeded, MetricsError, QueryTimeout, UnknownDimension
from metrics.model import FilterOp
from tests.small_source import AGENTS
from tests.warehouse.conftest import hold_duckdb_file


def test_client_returns_typed_arrow_tables(duckdb_warehouse: str) -> None:
    with MetricsClient(duckdb_warehouse) as client:
        table = client.query(
            ["query_count", "avg_query_latency_ms"],
            by=["agent.name", "time.month"],
            where={"agent.name": {"in": ["analyst", "fixer"]}},
            order_by=["-query_count", "agent.name"],
            timezone="Europe/Berlin",
        )
        assert table.schema == pa.schema(
            [
                ("agent.name", pa.string()),
                ("time.month", pa.timestamp("us", tz="Europe/Berlin")),
                ("query_count", pa.int64()),
                ("avg_query_latency_ms", pa.float64()),
            ]
        )
        frame = table.to_pandas()
        assert list(frame["agent.name"]) == ["analyst", "fixer"] and list(frame["query_count"]) == [10, 10]
        assert (
            frame["avg_query_latency_ms"][0]
            == sum(50 * (i + 1) for i in range(30) if AGENTS[i % 3][0] == "analyst") / 10
        )
        explained = client.explain(["query_count"], by=["agent.type"])
        assert explained.startswith("by [agent.type] in UTC\n  aggregate queries: query_count\n    scan ")
        assert "GROUP BY" in explained
        with pytest.raises(InvalidFilter, match="unknown operator 'equals'"):
            client.query(["query_count"], where={"agent.name": {"equals": "x"}})


@pytest.mark.parametrize(
    ("options", "error", "code", "message"),
    [
        (
            {"where": {"agent.name": {"equals": "x"}}},
            InvalidFilter,
            "INVALID_FILTER",
            "agent.name: unknown operator 'equals'",
        ),
        (
            {"having": {"query_count": {"greater": 1}}},
            InvalidFilter,
            "INVALID_FILTER",
            r"having on query_count: unknown operator 'greater'.*use eq, neq, gt",
        ),
        (
            {"having": {"query_count": {"like": "1%"}}},
            InvalidFilter,
            "INVALID_FILTER",
            "having on query_count: unknown operator 'like'",
        ),
        ({"by": ["time.fortnight"]}, UnknownDimension, "UNKNOWN_FIELD", "unknown dimension attribute 'time.fortnight'"),
    ],
)
def test_client_mistakes_are_typed_errors(
    duckdb_warehouse: str, options: dict[str, object], error: type[MetricsError], code: str, message: str
) -> None:
    with MetricsClient(duckdb_warehouse) as client:
        with pytest.raises(error, match=message) as raised:
            client.query(["query_count"], **options)
        assert raised.value.code == code


def test_driver_errors_become_backend_errors(warehouse_url: str, tmp_path: Path) -> None:
    """A table the warehouse lacks fails in the driver; the caller sees a BackendError, the driver's as its cause."""
    (tmp_path / "ghost.yaml").write_text(
        "facts:\n  ghosts:\n    label: Ghosts\n    table: fact_ghosts\n    time: created_at\n"
        "metrics:\n  ghost_count:\n    label: Ghosts\n    description: Rows of a table that does not exist.\n"
        "    fact: ghosts\n    aggregation: count\n"
    )
    with MetricsClient(warehouse_url, config=[tmp_path]) as client:
        with pytest.raises(BackendError, match="the warehouse could not run the query") as raised:
            client.query(["ghost_count"])
        assert raised.value.code == "INTERNAL" and isinstance(raised.value.__cause__, DRIVER_ERRORS)
        assert client.query(["query_count"]).num_rows == 1


def test_an_unusable_duckdb_file_is_backend_unavailable(tmp_path: Path) -> None:
    """Not a DuckDB database, or locked by another process: the metrics layer's error, naming the file."""
    notes = tmp_path / "notes.duckdb"
    notes.write_text("not a database")
    with pytest.raises(BackendUnavailable, match="cannot open the DuckDB warehouse .*notes.duckdb"):
        DuckDBBackend(str(notes))
    path = str(tmp_path / "held.duckdb")
    duckdb.connect(path).close()
    with hold_duckdb_file(path), pytest.raises(BackendUnavailable, match="cannot open the DuckDB warehouse"):
        DuckDBBackend(path)


def test_timeouts_reach_engine_callers_as_query_timeout(warehouse_url: str) -> None:
    with MetricsClient(warehouse_url, settings=EngineSettings(statement_timeout=1e-6)) as client:
        with pytest.raises(QueryTimeout, match="longer than 1e-06s and was cancelled") as raised:
            client.query(
                ["verification_count", "p95_verification_duration_ms"],
                by=["time.minute", "tier.name"],
                timezone="Europe/Berlin",
            )
        assert raised.value.code == "TIMEOUT"


def test_results_past_the_row_cap_are_an_error_not_a_cut(duckdb_warehouse: str) -> None:
    with MetricsClient(duckdb_warehouse, settings=EngineSettings(max_rows=5)) as client:
        with pytest.raises(LimitExceeded, match="returns 60 rows, more than the maximum of 5"):
            client.query(["verification_count"], by=["time.hour"])
        assert client.query(["verification_count"], by=["time.hour"], limit=5).num_rows == 5


async def test_duckdb_timeout_interrupts_the_query() -> None:
    backend = DuckDBBackend(":memory:")
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"longer than 0\.3s"):
        await backend.fetch("SELECT count(*) FROM range(100000000000) a", [], timeout=0.3)
    assert time.monotonic() - started < 5
    assert await backend.fetch("SELECT 42", [], timeout=1) == [(42,)]
    await backend.close()


async def test_duckdb_timeout_interrupts_a_query_that_had_not_started_yet() -> None:
    """A timeout shorter than the worker thread takes to start: the first interrupt finds nothing to stop."""
    backend = DuckDBBackend(":memory:")
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        await backend.fetch("SELECT count(*) FROM range(100000000000) a", [], timeout=1e-6)
    assert time.monotonic() - started < 5
    await backend.close()


async def test_duckdb_close_stops_queries_still_running() -> None:
    """A query nobody waits for any more (a request that failed on another field) must not keep the database open."""
    backend = DuckDBBackend(":memory:")
    orphan = asyncio.create_task(backend.fetch("SELECT count(*) FROM range(100000000000) a", [], timeout=60))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await backend.close()
    assert time.monotonic() - started < 5
    with pytest.raises(duckdb.Error):
        await orphan


async def test_duckdb_query_cancelled_by_its_caller_stops_before_its_cursor_closes() -> None:
    backend = DuckDBBackend(":memory:")
    caller = asyncio.create_task(backend.fetch("SELECT count(*) FROM range(100000000000) a", [], timeout=60))
    await asyncio.sleep(0.3)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert await backend.fetch("SELECT 42", [], timeout=1) == [(42,)]
    await backend.close()


async def test_postgres_timeout_cancels_the_query_on_the_server(pg_database: Callable[[], str]) -> None:
    url = pg_database()
    backend = await PostgresBackend.connect(sa.make_url(url))
    with pytest.raises(QueryTimeout):
        await backend.fetch("SELECT pg_sleep(30)", [], timeout=0.3)
    await asyncio.sleep(0.2)
    running = await backend.fetch(
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'", [], timeout=5
    )
    assert running == [(0,)]
    await backend.close()


async def test_a_lost_postgres_connection_is_unavailable_and_the_pool_recovers(
    pg_database: Callable[[], str], pg_admin: sa.Engine
) -> None:
    """The server ends our sessions (a restart, a failover): UNAVAILABLE, not INTERNAL; the next query reconnects."""
    url = pg_database()
    backend = await PostgresBackend.connect(sa.make_url(url))
    assert await backend.fetch("SELECT 1", [], timeout=5) == [(1,)]
    with pg_admin.connect() as connection:
        connection.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"),
            {"db": sa.make_url(url).database},
        )
    with pytest.raises(BackendUnavailable, match="the PostgreSQL warehouse is unavailable") as raised:
        await backend.fetch("SELECT 1", [], timeout=5)
    assert raised.value.code == "UNAVAILABLE"
    assert await backend.fetch("SELECT 2", [], timeout=5) == [(2,)]
    await backend.close()


def test_the_public_api_is_what_all_lists() -> None:
    """Everything ``metrics`` exposes besides its submodules is in ``__all__``, errors included."""
    public = {
        name for name, value in vars(metrics).items() if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert public == set(metrics.__all__)
    assert issubclass(metrics.BackendError, metrics.MetricsError) and metrics.QueryTimeout.code == "TIMEOUT"


async def test_a_repeated_request_is_compiled_once_and_unhashable_ones_still_run(duckdb_warehouse: str) -> None:
    engine = await MetricsEngine.connect(duckdb_warehouse)
    try:
        request = MetricRequest(("verification_count",), (DimensionRef.parse("tier.name"),))
        assert engine.prepare(request) is engine.prepare(MetricRequest(("verification_count",), request.dimensions))
        listed = Predicate(DimensionRef.parse("tier.name"), FilterOp.IN, ["Assist"])
        result = await engine.query(MetricRequest(("verification_count",), where=listed))
        assert result.rows == [(20,)]
    finally:
        await engine.close()


async def test_requests_with_long_filter_lists_are_not_kept(duckdb_warehouse: str) -> None:
    engine = await MetricsEngine.connect(duckdb_warehouse)
    try:
        names = tuple(f"tier {i}" for i in range(CACHED_FILTER_VALUES + 1))
        request = MetricRequest(
            ("verification_count",), where=Predicate(DimensionRef.parse("tier.name"), FilterOp.IN, names)
        )
        assert engine.prepare(request) is not engine.prepare(request)
    finally:
        await engine.close()
