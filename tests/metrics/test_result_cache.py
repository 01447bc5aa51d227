"""The result cache through the engine: hit and miss, exactly the uncached answer, scopes kept apart, bounds, an
ETL commit (in process and from another process) never served an old answer, and Redis down is only slower.

Every test runs on DuckDB and PostgreSQL, and those that keep entries with each store (memory, Redis).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from metrics.client import MetricsClient
from metrics.compiler import DimensionRef, MetricRequest, OrderBy, Predicate
from metrics.data_version import DataVersion
from metrics.engine import EngineSettings, MetricsEngine
from metrics.model import FilterOp
from metrics.policy import Grant, Scope
from metrics.registry import TIME, load_registry
from metrics.result_cache import CacheSettings
from metrics.results import QueryResult
from tests.small_source import AGENTS, build_source
from tests.warehouse.sourcedb import T0
from warehouse import schema
from warehouse.etl import run_etl

REGISTRY = load_registry()
VERIFICATION_AGENTS = [AGENTS[i % 3][0] if i % 4 else None for i in range(60)]
"""The agent of each of tests.small_source's 60 verifications."""


def _request(metrics: tuple[str, ...], *dimensions: str, **options: object) -> MetricRequest:
    return MetricRequest(metrics, tuple(DimensionRef.parse(d) for d in dimensions), **options)  # type: ignore[arg-type]


REQUESTS = {
    "tier-day-paris": _request(
        ("verification_count", "p95_verification_duration_ms", "verification_success_rate"),
        "tier.name",
        "time.day",
        timezone="Europe/Paris",
    ),
    "agent-hour-kolkata": _request(("verification_count",), "agent.name", "time.hour", timezone="Asia/Kolkata"),
    "weekend": _request(("verification_count",), "time.is_weekend"),
    "drill-across-page": _request(
        ("verification_count", "error_count"),
        "agent.name",
        order_by=(OrderBy("verification_count", descending=True),),
        limit=2,
        offset=1,
        total_count=True,
    ),
    "past-the-last-page": _request(("verification_count",), "agent.name", offset=10, total_count=True),
}
COUNT_BY_AGENT = _request(("verification_count",), "agent.name")


def _cells(result: QueryResult) -> list[tuple[object, ...]]:
    return [
        (value, type(value), value.utcoffset() if isinstance(value, datetime) else None)
        for row in result.rows
        for value in row
    ]


@pytest.fixture
async def open_engine(warehouse_url: str) -> AsyncIterator[Callable[..., object]]:
    opened: list[MetricsEngine] = []

    async def connect(cache: CacheSettings | None, url: str = warehouse_url, **settings: object) -> MetricsEngine:
        engine = await MetricsEngine.connect(url, REGISTRY, EngineSettings(cache=cache, **settings))  # type: ignore[arg-type]
        opened.append(engine)
        return engine

    yield connect
    for engine in opened:
        await engine.close()


@pytest.mark.parametrize("name", REQUESTS)
async def test_a_repeat_is_a_hit_with_exactly_the_uncached_answer(
    open_engine: Callable[..., object], cache_settings: CacheSettings, name: str
) -> None:
    plain, cached = await open_engine(None), await open_engine(cache_settings)  # type: ignore[misc]
    request = REQUESTS[name]
    uncached = await plain.query(request)
    assert await cached.cached(request) is False
    first, second = await cached.query(request), await cached.query(request)
    assert (uncached.from_cache, first.from_cache, second.from_cache) == (None, False, True)
    assert await cached.cached(request) is True
    for result in (first, second):
        assert result.columns == uncached.columns and result.total_count == uncached.total_count
        assert _cells(result) == _cells(uncached)
    assert len(uncached) > 0 or name == "past-the-last-page"


def _scope(policy: str, agent_types: tuple[str, ...], k: int | None = None) -> Scope:
    rows = Predicate(DimensionRef("agent", "type"), FilterOp.IN, agent_types)
    return Scope((Grant(policy, frozenset(REGISTRY.metrics), frozenset((TIME, *REGISTRY.dimensions)), rows),), k)


def _counts(result: QueryResult) -> dict[object, int]:
    return dict(zip(result.column("agent.name"), result.column("verification_count"), strict=True))


def _expected(agent_types: tuple[str, ...]) -> Counter[str]:
    kinds = dict(AGENTS)
    return Counter(a for a in VERIFICATION_AGENTS if a is not None and kinds[a] in agent_types)


async def test_callers_share_an_entry_only_with_an_equal_scope(
    open_engine: Callable[..., object], cache_settings: CacheSettings
) -> None:
    engine = await open_engine(cache_settings)  # type: ignore[misc]

    async def ask(scope: Scope | None) -> QueryResult:
        return await engine.query(replace(COUNT_BY_AGENT, scope=scope))

    admin = await ask(None)
    data_scope = _scope("data team", ("data",))
    data, support = await ask(data_scope), await ask(_scope("data team", ("support",)))
    assert (admin.from_cache, data.from_cache, support.from_cache) == (False, False, False)
    assert sum(_counts(admin).values()) == 60
    assert _counts(data) == _expected(("data",)) and _counts(support) == _expected(("support",))
    again = await ask(_scope("data team", ("data",)))  # another caller, an equal scope
    assert again.from_cache is True and _counts(again) == _counts(data)
    # Same rows under another policy's name: the same SQL and values, but another scope, so another entry.
    other = _scope("other team", ("data",))
    assert (
        engine.prepare(replace(COUNT_BY_AGENT, scope=other))[1:]
        == engine.prepare(again_request := replace(COUNT_BY_AGENT, scope=_scope("data team", ("data",))))[1:]
    )
    assert (await ask(other)).from_cache is False and (await engine.query(again_request)).from_cache is True
    research = await ask(_scope("data team", ("data",), k=2))
    assert research.from_cache is False


async def test_a_result_over_the_entry_bound_is_answered_not_kept(
    open_engine: Callable[..., object], cache_settings: CacheSettings
) -> None:
    engine = await open_engine(replace(cache_settings, max_entry_bytes=120))  # type: ignore[misc]
    big = REQUESTS["agent-hour-kolkata"]
    assert [(await engine.query(big)).from_cache for _ in range(2)] == [False, False]
    small = _request(("verification_count",))
    assert [(await engine.query(small)).from_cache for _ in range(2)] == [False, True]


async def test_the_least_recently_used_entry_goes_first(open_engine: Callable[..., object]) -> None:
    engine = await open_engine(CacheSettings(max_entries=2))  # type: ignore[misc]
    a, b, c = (_request((metric,)) for metric in ("verification_count", "error_count", "query_count"))
    outcomes = [(await engine.query(request)).from_cache for request in (a, b, a, c, a, b)]
    assert outcomes == [False, False, True, False, True, False]  # c evicted b, the least recently used


async def test_without_a_cache_nothing_is_consulted(open_engine: Callable[..., object]) -> None:
    engine = await open_engine(None)  # type: ignore[misc]
    assert engine.cache is None
    assert [(await engine.query(COUNT_BY_AGENT)).from_cache for _ in range(2)] == [None, None]
    assert await engine.cached(COUNT_BY_AGENT) is None


async def test_a_warehouse_no_etl_run_has_committed_to_caches_nothing(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'empty.duckdb'}"
    creator = sa.create_engine(url)
    with creator.begin() as connection:
        schema.create_schema(connection)
    creator.dispose()
    engine = await MetricsEngine.connect(url, REGISTRY, EngineSettings())
    try:
        assert [(await engine.query(COUNT_BY_AGENT)).from_cache for _ in range(2)] == [None, None]
    finally:
        await engine.close()


async def test_redis_down_answers_without_the_cache(open_engine: Callable[..., object]) -> None:
    plain = await open_engine(None)  # type: ignore[misc]
    down = await open_engine(CacheSettings(url="redis://127.0.0.1:1/0", timeout=0.2))  # type: ignore[misc]
    expected = await plain.query(COUNT_BY_AGENT)
    for _ in range(2):
        result = await asyncio.wait_for(down.query(COUNT_BY_AGENT), 5)
        assert result.from_cache is False and _cells(result) == _cells(expected)
    assert await down.cached(COUNT_BY_AGENT) is False


async def test_lookups_arriving_together_share_one_read_of_the_version_and_later_ones_read_again() -> None:
    reads: list[asyncio.Event] = []

    async def read() -> list[tuple[object, ...]]:
        reads.append(release := asyncio.Event())
        runs = len(reads)
        await release.wait()
        return [(f"run-{runs}",)]

    version = DataVersion(read)
    together = [asyncio.ensure_future(version.current()) for _ in range(3)]
    for _ in range(5):  # the read is sent
        await asyncio.sleep(0)
    assert len(reads) == 1
    later = asyncio.ensure_future(version.current())  # arrived after the read was sent: may follow a commit
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(reads) == 2
    for release in reads:
        release.set()
    assert await asyncio.gather(*together) == ["run-1"] * 3
    assert await later == "run-2"


def _etl_in_another_process(source: str, warehouse: str) -> None:
    command = [sys.executable, "-m", "graphql_api.cli", "etl", "--source", source, "--warehouse", warehouse]
    subprocess.run([*command, "--hash-key", "k", "--quiet"], check=True, timeout=300)


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
async def test_an_etl_commit_is_never_answered_from_before_it(
    backend: str, tmp_path: Path, pg_url: str, cache_settings: CacheSettings
) -> None:
    """DuckDB: the ETL runs in this process, as ``serve --etl-every`` runs it; PostgreSQL: in another process."""
    source = build_source(f"sqlite:///{tmp_path / 'source.sqlite'}")
    warehouse = f"duckdb:///{tmp_path / 'w.duckdb'}" if backend == "duckdb" else pg_url
    run_etl(source.url, warehouse, hash_key="k")
    url = warehouse.replace("postgresql+psycopg", "postgresql+asyncpg")
    engine = await MetricsEngine.connect(url, REGISTRY, EngineSettings(cache=cache_settings, read_only=False))
    count = _request(("verification_count",))
    try:
        assert [(await engine.query(count)).from_cache for _ in range(2)] == [False, True]
        later = T0 + timedelta(days=30)
        source.insert(
            "action_contracts",
            *(
                {"contract_id": f"late{i}", "created_at": later, "updated_at": later, "tier_id": "tier_0"}
                for i in range(5)
            ),
        )
        if backend == "duckdb":
            await asyncio.to_thread(run_etl, source.url, warehouse, hash_key="k")
        else:
            _etl_in_another_process(source.url, warehouse)
        after = await engine.query(count)
        assert after.from_cache is False and after.rows == [(65,)]
        assert (await engine.query(count)).from_cache is True
    finally:
        await engine.close()
        source.dispose()


async def test_a_count_is_answered_from_the_cache_too(
    open_engine: Callable[..., object], cache_settings: CacheSettings
) -> None:
    """As k-anonymity's count of suppressed rows is, beside a research caller's cached answer."""
    engine = await open_engine(cache_settings)  # type: ignore[misc]
    fetched: list[str] = []
    fetch = engine.backend.fetch

    async def counting(sql: str, params: list[object], *, timeout: float) -> list[tuple[object, ...]]:
        fetched.append(sql)
        return await fetch(sql, params, timeout=timeout)

    engine.backend.fetch = counting
    verifications = sa.select(sa.func.count()).select_from(sa.table("fact_verifications"))
    scope = _scope("data team", ("data",))
    assert [await engine.count(verifications, s) for s in (None, None, scope, scope)] == [60, 60, 60, 60]
    assert sum("fact_verifications" in sql for sql in fetched) == 2  # once per scope


def test_the_python_client_caches_unless_told_not_to(duckdb_warehouse: str) -> None:
    with MetricsClient(duckdb_warehouse) as client:
        assert client.cached(["verification_count"], by=["agent.name"]) is False
        first = client.query(["verification_count"], by=["agent.name"])
        assert client.cached(["verification_count"], by=["agent.name"]) is True
        assert client.query(["verification_count"], by=["agent.name"]) == first
    with MetricsClient(duckdb_warehouse, settings=EngineSettings(max_rows=None, cache=None)) as client:
        assert client.cached(["verification_count"], by=["agent.name"]) is None
        assert client.query(["verification_count"], by=["agent.name"]) == first
