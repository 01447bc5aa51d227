"""The real server: uvicorn on 127.0.0.1, the ETL inside it, and GraphiQL in a real browser."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests.small_source import TIERS, build_source
from tests.warehouse.sourcedb import T0

ARTIFACTS = Path(__file__).parents[2] / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            if httpx.get(url, timeout=1).status_code in (200, 503):
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


def start_server(warehouse: str, *extra: str) -> Iterator[str]:
    port = _free_port()
    command = [sys.executable, "-m", "graphql_api.cli", "serve", "--warehouse", warehouse, "--port", str(port), *extra]
    process = subprocess.Popen(command, env={**os.environ, "GRACE_METRICS_HASH_KEY": "k"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/healthz", process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def server(postgresql_warehouse: str) -> Iterator[str]:
    yield from start_server(postgresql_warehouse)


def _graphql(base: str, query: str, variables: dict[str, object] | None = None) -> dict[str, object]:
    response = httpx.post(f"{base}/graphql", json={"query": query, "variables": variables}, timeout=30)
    assert response.status_code == 200
    return response.json()


def test_queries_over_http_against_uvicorn(server: str) -> None:
    body = _graphql(server, "query($n: Int) { metrics(limit: $n, orderBy: [{field: \"tier.name\"}]) { rows { tier { name level } verificationCount errorCount } totalCount } }", {"n": 2})
    errors_per_tier = {TIERS[i % 2][1]: 10 for i in range(2)}
    assert body["data"] == {
        "metrics": {
            "rows": [
                {"tier": {"name": "Assist", "level": 1}, "verificationCount": 20, "errorCount": errors_per_tier["Assist"]},
                {"tier": {"name": "Observe", "level": 0}, "verificationCount": 20, "errorCount": errors_per_tier["Observe"]},
            ],
            "totalCount": 3,
        }
    }
    bad = _graphql(server, "{ metrics { rows { queryCount component { kernel } } } }")
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_DIMENSION"
    assert httpx.post(f"{server}/graphql", content=b"not json", headers={"content-type": "application/json"}).status_code == 400


def test_scheduled_etl_inside_the_server_shows_new_data_without_restart(tmp_path: Path) -> None:
    source = build_source(f"sqlite:///{tmp_path / 'source.sqlite'}")
    warehouse = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    from warehouse.etl import run_etl

    run_etl(source.url, warehouse, hash_key="k")
    for base in start_server(warehouse, "--source", source.url, "--etl-every", "0.3"):
        count = "{ metrics { rows { verificationCount } } }"
        assert _graphql(base, count)["data"]["metrics"]["rows"] == [{"verificationCount": 60}]
        later = T0 + timedelta(days=30)
        source.insert("action_contracts", {"contract_id": "new", "created_at": later, "updated_at": later})
        deadline = time.monotonic() + 20
        while _graphql(base, count)["data"]["metrics"]["rows"] != [{"verificationCount": 61}]:
            assert time.monotonic() < deadline, "the scheduled ETL did not bring the new row"
            time.sleep(0.2)
    source.dispose()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_graphiql_runs_a_query_in_a_real_browser_offline(server: str) -> None:
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})

        def only_loopback(route: object) -> None:
            host = urlparse(route.request.url).hostname  # type: ignore[attr-defined]
            if host == "127.0.0.1":
                route.continue_()  # type: ignore[attr-defined]
            else:
                outside.append(route.request.url)  # type: ignore[attr-defined]
                route.abort()  # type: ignore[attr-defined]

        page.route("**/*", only_loopback)
        page.goto(f"{server}/graphql")
        page.wait_for_selector(".graphiql-query-editor .CodeMirror")
        page.evaluate("q => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q)", "{ metrics { rows { tier { name } verificationCount } } }")
        # CodeMirror draws only the visible lines, so the response is read through its API; a click
        # made while GraphiQL still loads the schema is ignored, so click until a response shows.
        read = "() => document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? ''"
        deadline = time.monotonic() + 15
        while "verificationCount" not in (response := page.evaluate(read)) and time.monotonic() < deadline:
            page.click(".graphiql-execute-button")
            page.wait_for_timeout(500)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "graphiql.png"))
        browser.close()
    assert '"Observe"' in response and '"verificationCount": 20' in response, response
    assert outside == []
