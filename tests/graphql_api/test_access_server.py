"""Access control through the real server (uvicorn, HTTP, both backends): signed tokens and hashed keys, a
team-scoped caller, the research role, and the audit chain the server leaves behind, verified by the command."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from graphql_api.cli import main
from tests.graphql_api.test_access import POLICIES, SECRET, VERIFICATION_AGENTS, _scoped
from tests.graphql_api.test_research import RAW_USER_ID
from tests.graphql_api.test_server import _warehouse, start_server


def _post(base: str, query: str, headers: dict[str, str], status: int = 200) -> dict[str, Any]:
    response = httpx.post(f"{base}/graphql", json={"query": query}, headers=headers, timeout=30)
    assert response.status_code == status, response.text
    return response.json()


def _token(**claims: Any) -> dict[str, str]:
    payload = {"sub": "ada", "exp": time.time() + 86_400, **claims}
    return {"authorization": "Bearer " + jwt.encode(payload, SECRET, algorithm="HS256")}


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
    support = _token(role="analyst", groups=["support"], agent_types=["data"])
    sent = 0
    for server in start_server(
        tmp_path / "server.log", "--warehouse", server_url, "--config", str(config), env=env, backend=backend
    ):
        scoped = _post(server.base, "{ metrics { rows { verificationCount agent { name } } } }", support)
        expected = _scoped(VERIFICATION_AGENTS, {"data"})
        assert {r["agent"]["name"]: r["verificationCount"] for r in scoped["data"]["metrics"]["rows"]} == expected
        hidden = _post(server.base, "{ metrics { rows { verificationSuccessRate } } }", support)
        assert [e["extensions"]["code"] for e in hidden["errors"]] == ["FORBIDDEN"]
        expired = _post(server.base, "{ catalog { metrics { name } } }", _token(exp=time.time() - 60), status=401)
        assert expired["errors"][0] == {"message": "the token has expired", "extensions": {"code": "UNAUTHORIZED"}}
        no_group = _post(server.base, "{ metrics { rows { queryCount } } }", {"x-api-key": "research-key"})
        assert [e["extensions"]["code"] for e in no_group["errors"]] == ["FORBIDDEN"]  # policies exist, no group
        researcher = _token(role="research", groups=["support"], agent_types=["data", "support", "engineer"])
        research = _post(server.base, "{ metrics { totalCount rows { time(grain: DAY) queryCount } } }", researcher)
        assert research["extensions"]["suppressedRows"] > 0, research
        assert research["data"]["metrics"]["totalCount"] == len(research["data"]["metrics"]["rows"])
        assert not RAW_USER_ID.search(json.dumps(research))
        sent = 5
    assert main(["audit", "verify", "--warehouse", url]) == 0
    assert f"{sent} entries verifies" in capsys.readouterr().out
