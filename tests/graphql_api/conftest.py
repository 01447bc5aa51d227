"""A small loaded warehouse on DuckDB and on PostgreSQL, and an HTTP client on the app over it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphql_api.app import create_app
from graphql_api.settings import Settings
from metrics.registry import Registry, load_registry
from tests.warehouse.sourcedb import T0, SourceDB
from warehouse.etl import run_etl

TIERS = [("tier_0", "Observe", 0), ("tier_1", "Assist", 1), ("tier_2", "Operational", 2)]
AGENTS = [("analyst", "data"), ("fixer", "engineer"), ("helper", "support")]


def build_source(url: str) -> SourceDB:
    source = SourceDB(url)
    source.insert("autonomy_tiers", *({"tier_id": t, "tier_name": n, "tier_level": lvl, "updated_at": T0 - timedelta(days=30)} for t, n, lvl in TIERS))
    source.insert("agents", *({"agent_name": a, "agent_type": kind, "updated_at": T0 - timedelta(days=30)} for a, kind in AGENTS))
    source.insert("components", {"component_name": "api", "kernel": "ingress", "updated_at": T0})
    source.insert(
        "action_contracts",
        *(
            {
                "contract_id": f"c{i}",
                "created_at": T0 + timedelta(hours=7 * i),
                "updated_at": T0,
                "tier_id": TIERS[i % 3][0],
                "agent_name": AGENTS[i % 3][0] if i % 4 else None,
                "status": ("verified", "verified", "failed", "pending")[i % 4],
                "duration_ms": 100 + 37 * i,
            }
            for i in range(60)
        ),
    )
    source.insert("error_events", *({"event_id": f"e{i}", "occurred_at": T0 + timedelta(hours=11 * i), "updated_at": T0, "tier_id": TIERS[i % 2][0], "agent_name": AGENTS[i % 3][0]} for i in range(20)))
    source.insert("agent_queries", *({"query_id": f"q{i}", "created_at": T0 + timedelta(hours=5 * i), "updated_at": T0, "agent_name": AGENTS[i % 3][0], "latency_ms": 50 * (i + 1), "user_id": f"u{i % 5}"} for i in range(30)))
    return source


@pytest.fixture(scope="session")
def duckdb_warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("api")
    source = build_source(f"sqlite:///{root / 'source.sqlite'}")
    url = f"duckdb:///{root / 'warehouse.duckdb'}"
    run_etl(source.url, url, hash_key="k")
    source.dispose()
    return url


@pytest.fixture(scope="session")
def postgresql_warehouse(tmp_path_factory: pytest.TempPathFactory, pg_database: Callable[[], str]) -> str:
    source = build_source(f"sqlite:///{tmp_path_factory.mktemp('api_pg') / 'source.sqlite'}")
    url = pg_database()
    run_etl(source.url, url, hash_key="k")
    source.dispose()
    return url.replace("postgresql+psycopg", "postgresql+asyncpg")


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_warehouse")


class Api:
    """Posts GraphQL and counts the SQL statements the engine ran."""

    def __init__(self, client: httpx.AsyncClient, app: Any) -> None:
        self.client = client
        self.app = app
        self.statements = 0

    async def __call__(self, query: str, variables: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
        response = await self.client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()


async def open_api(warehouse_url: str, registry: Registry | None = None, **settings: Any) -> AsyncIterator[Api]:
    app = create_app(Settings(warehouse_url=warehouse_url, **settings), registry or load_registry())
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            api = Api(client, app)
            backend = app.state.engine.backend
            fetch = backend.fetch

            async def counting(sql: str, params: list[Any], *, timeout: float) -> Any:
                api.statements += 1
                return await fetch(sql, params, timeout=timeout)

            backend.fetch = counting
            yield api


@pytest.fixture
async def api(warehouse_url: str) -> AsyncIterator[Api]:
    async for opened in open_api(warehouse_url):
        yield opened


CUSTOM_CONFIG = Path(__file__).parents[1] / "metrics" / "configs" / "custom_metric"
