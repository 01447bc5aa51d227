"""Access control through the real server (uvicorn, HTTP, both backends): signed tokens and hashed keys, a
team-scoped caller, the research role, and the audit chain the server leaves behind, verified by the command."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphql_api.cli import main
from tests.graphql_api.conftest import POLICIES, SECRET, codes, token
from tests.graphql_api.test_access import VERIFICATION_AGENTS, _scoped
from tests.graphql_api.test_research import RAW_USER_ID
from tests.graphql_api.test_server import _warehouse, start_server


def _post(base: str, query: str, headers: dict[str, str], status: int = 200) -> dict[str, Any]:
    response = httpx.post(f"{base}/graphql", json={"query": query}, headers=headers, timeout=30)
    assert response.status_code == status, response.text
    return response.json()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
def test_access_over_http(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    url, server_url = _warehouse(
        backend, tmp_path, request.getfixturevalue("pg_database") if backend == "postgresql" else lambda: ""
    )
    config = tmp_path / "config"
    config.mkdir()
    (config / "policies.yaml").write_text(POLICIES)
    env = {
        "GRACE_METRICS_JWT_SECRET": SECRET,
        "GRACE_METRICS_API_KEYS": f"sha256:{hashlib.sha256(b'research-key').hexdigest()}:research",
    }
    support = token(groups=["support"], agent_types=["data"])
    sent = 0
    for server in start_server(
        tmp_path / "server.log", "--warehouse", server_url, "--config", str(config), env=env, backend=backend
    ):
        scoped = _post(server.base, "{ metrics { rows { verificationCount agent { name } } } }", support)
        expected = _scoped(VERIFICATION_AGENTS, {"data"})
        assert {r["agent"]["name"]: r["verificationCount"] for r in scoped["data"]["metrics"]["rows"]} == expected
        hidden = _post(server.base, "{ metrics { rows { verificationSuccessRate } } }", support)
        assert codes(hidden) == ["FORBIDDEN"]
        expired = _post(server.base, "{ catalog { metrics { name } } }", token(exp=time.time() - 60), status=401)
        assert expired["errors"][0] == {"message": "the token has expired", "extensions": {"code": "UNAUTHORIZED"}}
        no_group = _post(server.base, "{ metrics { rows { queryCount } } }", {"x-api-key": "research-key"})
        assert codes(no_group) == ["FORBIDDEN"]  # policies exist, no group
        researcher = token("research", groups=["support"], agent_types=["data", "support", "engineer"])
        research = _post(server.base, "{ metrics { totalCount rows { time(grain: DAY) queryCount } } }", researcher)
        assert research["extensions"]["suppressedRows"] > 0, research
        assert research["data"]["metrics"]["totalCount"] == len(research["data"]["metrics"]["rows"])
        assert not RAW_USER_ID.search(json.dumps(research))
        sent = 5
    assert main(["audit", "verify", "--warehouse", url]) == 0
    assert f"{sent} entries verifies" in capsys.readouterr().out


@pytest.mark.slow
def test_worker_processes_extend_one_audit_chain(
    tmp_path: Path, pg_database: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``serve --workers 2``: two processes append to one chain, each remembering only its own last entry; the
    primary key makes the one that falls behind redo its append after the other's, so the chain holds."""
    url, server_url = _warehouse("postgresql", tmp_path, pg_database)
    query = {"query": "{ metrics { rows { verificationCount } } }"}

    async def burst(base: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            return await asyncio.gather(*(client.post("/graphql", json=query) for _ in range(60)))

    for server in start_server(tmp_path / "server.log", "--warehouse", server_url, "--workers", "2"):
        responses = asyncio.run(burst(server.base))
        assert [r.status_code for r in responses] == [200] * 60
    assert main(["audit", "verify", "--warehouse", url]) == 0
    assert "60 entries verifies" in capsys.readouterr().out
