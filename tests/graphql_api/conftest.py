"""An HTTP client on the app over the small warehouse (see tests/small_source.py), and the callers of the access
tests: signed tokens per role and claims, and the policies they are scoped by."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from graphql_api.app import create_app
from graphql_api.settings import AccessSettings, Settings
from metrics.registry import Registry, load_registry


class Api:
    """Posts GraphQL and counts the SQL statements the engine ran: queries, and reads of the data version."""

    def __init__(self, client: httpx.AsyncClient, app: Any) -> None:
        self.client = client
        self.app = app
        self.statements = 0
        self.version_reads = 0
        self.rollup_reads = 0

    async def __call__(self, query: str, variables: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
        response = await self.client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        body = response.json()
        # 401 is a refusal of the caller's credentials before anything ran, and only that.
        refused = response.status_code == 401 and {e["extensions"]["code"] for e in body["errors"]} == {"UNAUTHORIZED"}
        assert response.status_code == 200 or refused, response.text
        return body


async def open_api(warehouse_url: str, registry: Registry | None = None, **settings: Any) -> AsyncIterator[Api]:
    app = create_app(Settings(warehouse_url=warehouse_url, **settings), registry or load_registry())
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            api = Api(client, app)
            backend = app.state.engine.backend
            fetch = backend.fetch

            async def counting(sql: str, params: list[Any], *, timeout: float) -> Any:
                if "FROM etl_settings" in sql:  # the data version (metrics.data_version)
                    api.version_reads += 1
                elif "rollup_definitions" in sql or "information_schema.tables" in sql:  # rollups held (metrics.engine)
                    api.rollup_reads += 1
                else:
                    api.statements += 1
                return await fetch(sql, params, timeout=timeout)

            backend.fetch = counting
            yield api


@pytest.fixture
async def api(warehouse_url: str) -> AsyncIterator[Api]:
    async for opened in open_api(warehouse_url):
        yield opened


@pytest.fixture
async def uncached_api(warehouse_url: str) -> AsyncIterator[Api]:
    """Without the result cache: for tests of the statements a request costs (the cache would answer repeats)."""
    async for opened in open_api(warehouse_url, cache=None):
        yield opened


SECRET = "a-shared-secret-of-at-least-32-bytes!"
POLICIES = """
policies:
  - group: support            # agents of the caller's types only, no rates, no actor
    metrics: {excludes: [verification_success_rate]}
    dimensions: {excludes: [actor]}
    rows:
      agent.type: {in: "{claims.agent_types}"}
  - groups: [auditors]
    metrics: {includes: [error_count]}
"""


def token(role: str = "analyst", **claims: Any) -> dict[str, str]:
    """The headers of a caller with a signed token for ``role`` and ``claims`` (valid for a day)."""
    payload = {"sub": "ada", "role": role, "exp": time.time() + 86_400, **claims}
    return {"authorization": "Bearer " + jwt.encode(payload, SECRET, algorithm="HS256")}


RESEARCH = token("research")


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def open_access_api(
    warehouse_url: str, policies: Path | None = None, *, k: int = 5, **settings: Any
) -> AsyncIterator[Api]:
    """The app accepting ``token`` callers, research k-anonymous at ``k``, with the policies of the directory
    ``policies`` (none: every caller but research sees everything)."""
    config = {"config_dirs": (policies,)} if policies else {}
    registry = load_registry([policies]) if policies else None
    access = AccessSettings(jwt_secret=SECRET, k_anonymity=k)
    async for api in open_api(warehouse_url, registry, access=access, **config, **settings):
        yield api


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    (tmp_path / "policies.yaml").write_text(POLICIES)
    return tmp_path


@pytest.fixture
async def scoped_api(warehouse_url: str, policies: Path) -> AsyncIterator[Api]:
    """The app under ``POLICIES``."""
    async for opened in open_access_api(warehouse_url, policies):
        yield opened


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CUSTOM_CONFIG = Path(__file__).parents[1] / "metrics" / "configs" / "custom_metric"
