"""The real server: uvicorn on 127.0.0.1 over DuckDB and PostgreSQL, the ETL inside it, GraphiQL in a browser.

Answers are compared with ``tests.metrics.reference``, plain Python over the
source rows. Two servers per backend: ``server`` (API keys, small row and
depth caps) for the answers and most error codes, ``broken`` (a tiny
statement timeout, a metric over a table that does not exist, no ETL log) for
TIMEOUT, INTERNAL and an unhealthy /healthz.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import sqlalchemy as sa

from graphql_api.settings import WAREHOUSE_ENV
from tests.graphql_api.conftest import free_port
from tests.metrics.reference import Reference, read_snapshot
from tests.small_source import build_source
from tests.warehouse.sourcedb import T0
from warehouse.etl import run_etl

ARTIFACTS = Path(__file__).parents[2] / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
KEYS = {"admin": "admin-key", "analyst": "analyst-key", "viewer": "viewer-key"}
GHOST_CONFIG = """
facts:
  ghosts:
    label: Ghosts
    description: A fact table the warehouse never had.
    table: fact_ghosts
    time: seen_at
    columns: {}
    dimensions: {}
metrics:
  ghost_count:
    label: Ghosts
    description: Rows of a table that does not exist.
    fact: ghosts
    aggregation: count
    unit: ghosts
    format: integer
"""


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path, *, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code in (200, 503):
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"server did not start: {log.read_text()}")


@dataclass
class Server:
    base: str
    log: Path
    backend: str
    warehouse: str

    def post(
        self, query: str, variables: dict[str, Any] | None = None, *, role: str | None = "analyst"
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {KEYS[role]}"} if role else {}
        return httpx.post(
            f"{self.base}/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=30
        )

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, role: str | None = "analyst"
    ) -> dict[str, Any]:
        response = self.post(query, variables, role=role)
        assert response.status_code == 200, response.text
        return response.json()

    def error(
        self, query: str, variables: dict[str, Any] | None = None, *, role: str | None = "analyst"
    ) -> dict[str, Any]:
        body = self.graphql(query, variables, role=role)
        assert body.get("errors"), body
        return body["errors"][0]


def start_server(
    log: Path, *args: str, env: dict[str, str] | None = None, backend: str = "", warehouse: str = ""
) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, "-m", "graphql_api.cli", "serve", "--port", str(port), *args]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, "GRACE_METRICS_HASH_KEY": "k", **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: its workers, if any, stop with it
        )
    server = Server(f"http://127.0.0.1:{port}", log, backend, warehouse)
    try:
        wait_until_up(f"{server.base}/healthz", process, log)
        yield server
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server and its workers; SIGKILL if they are not gone within 10 s (a loaded machine)."""
    with contextlib.suppress(ProcessLookupError):  # gone already (it failed to start, say)
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _warehouse(backend: str, root: Path, pg_database: Callable[[], str]) -> tuple[str, str]:
    """A fresh warehouse of the small source: (URL for the ETL and SQLAlchemy, URL for the server)."""
    source = build_source(f"sqlite:///{root / 'source.sqlite'}")
    url = f"duckdb:///{root / 'warehouse.duckdb'}" if backend == "duckdb" else pg_database()
    run_etl(source.url, url, hash_key="k")
    source.dispose()
    return url, url.replace("postgresql+psycopg", "postgresql+asyncpg")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    source = build_source(f"sqlite:///{tmp_path_factory.mktemp('reference') / 'source.sqlite'}")
    snapshot = read_snapshot(source.url)
    source.dispose()
    return Reference([snapshot], hash_key="k")


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    backend = request.param
    root = tmp_path_factory.mktemp(f"server_{backend}")
    _, url = _warehouse(
        backend, root, request.getfixturevalue("pg_database") if backend == "postgresql" else lambda: ""
    )
    env = {
        "GRACE_METRICS_API_KEYS": ",".join(f"{key}:{role}" for role, key in KEYS.items()),
        "GRACE_METRICS_MAX_ROWS": "50",
        "GRACE_METRICS_MAX_DEPTH": "3",
        "GRACE_METRICS_MAX_TOKENS": "2000",
    }
    # DuckDB's server finds its warehouse in the environment, PostgreSQL's on the command line: both ways work.
    args = () if backend == "duckdb" else ("--warehouse", url)
    yield from start_server(
        root / "server.log",
        *args,
        env={**env, WAREHOUSE_ENV: url} if backend == "duckdb" else env,
        backend=backend,
        warehouse=url,
    )


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def broken(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose warehouse lost its ETL log, with a metric over a missing table and a tiny statement timeout.

    DuckDB gets five million extra verifications, so a percentile query takes over a second against a 50 ms timeout
    (with one million it once finished within the timeout on a quiet machine); on
    PostgreSQL the test holds a lock on the fact table instead, which makes any query on it wait past the timeout.
    """
    backend = request.param
    root = tmp_path_factory.mktemp(f"broken_{backend}")
    url, server_url = _warehouse(
        backend, root, request.getfixturevalue("pg_database") if backend == "postgresql" else lambda: ""
    )
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        if backend == "duckdb":
            connection.execute(
                sa.text(
                    "INSERT INTO fact_verifications (contract_id, created_at, source_updated_at, duration_ms) "
                    "SELECT 'heavy' || i, TIMESTAMP '2020-01-01' + to_seconds(i), TIMESTAMP '2020-01-01', i % 997 "
                    "FROM range(5000000) t(i)"
                )
            )
        connection.execute(sa.text("DROP TABLE etl_run_tables"))
        connection.execute(sa.text("DROP TABLE etl_runs"))
    engine.dispose()
    config = root / "ghosts"
    config.mkdir()
    (config / "ghosts.yaml").write_text(GHOST_CONFIG)
    timeout = "0.05" if backend == "duckdb" else "0.5"
    yield from start_server(
        root / "server.log",
        "--warehouse",
        server_url,
        "--config",
        str(config),
        env={"GRACE_METRICS_STATEMENT_TIMEOUT": timeout},
        backend=backend,
        warehouse=url,
    )


# --- answers --------------------------------------------------------------------------------------

DIMENSION_FIELDS = {
    "tier.name": "tier { name }",
    "agent.name": "agent { name }",
    "agent.type": "agent { type }",
    "time.day": "time(grain: DAY)",
    None: "",
}
CASES = [
    (("verification_count", "verification_success_rate", "p95_verification_duration_ms"), "tier.name"),
    (("verification_count", "avg_verification_duration_ms"), "agent.name"),
    (("query_count", "unique_users", "p95_query_latency_ms"), "agent.type"),
    (("errors_per_verification", "error_count"), "agent.name"),
    (("error_count", "verification_count"), None),
    (("verification_count",), "time.day"),
]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _group(row: dict[str, Any], key: str | None) -> Any:
    if key is None:
        return None
    if key == "time.day":
        return datetime.fromisoformat(row["time"])
    dimension, attribute = key.split(".")
    return row[dimension][attribute]


def test_catalog_answers_match_plain_python_over_the_source(server: Server, reference: Reference) -> None:
    fields = [
        f"c{i}: metrics {{ rows {{ {DIMENSION_FIELDS[key]} {' '.join(map(_camel, metrics))} }} totalCount }}"
        for i, (metrics, key) in enumerate(CASES)
    ]
    data = server.graphql("{ " + "\n".join(fields) + " }")["data"]
    for i, (metrics, key) in enumerate(CASES):
        rows = data[f"c{i}"]["rows"]
        assert data[f"c{i}"]["totalCount"] == len(rows)
        for metric in metrics:
            expected = reference.compute(metric, key)
            got = {_group(row, key): row[_camel(metric)] for row in rows}
            # Beside another fact's metric, a group only that fact has shows this one as 0 (a count) or null.
            absent = {group: got[group] for group in got.keys() - expected.keys()}
            assert set(absent.values()) <= {0, None}, (metric, key, absent)
            assert {group: value for group, value in got.items() if group not in absent} == {
                group: pytest.approx(value, rel=1e-9) if isinstance(value, float) else value
                for group, value in expected.items()
            }, (metric, key)


def test_fragments_aliases_and_variables(server: Server, reference: Reference) -> None:
    body = server.graphql(
        """
        query Sliced($grain: TimeGrain!, $tiers: [String!]) {
          metrics(where: {tier: {name: {in: $tiers}}}) {
            rows { ...Tier ... on MetricRow { n: verificationCount } day: time(grain: $grain) week: time(grain: WEEK) }
          }
        }
        fragment Tier on MetricRow { tier { name } }
        """,
        {"grain": "DAY", "tiers": ["Observe", "Assist"]},
    )
    rows = body["data"]["metrics"]["rows"]
    by_tier = {name: sum(r["n"] for r in rows if r["tier"]["name"] == name) for name in ("Observe", "Assist")}
    assert by_tier == {
        name: count for name, count in reference.compute("verification_count", "tier.name").items() if name in by_tier
    }
    for row in rows:
        day, week = datetime.fromisoformat(row["day"]), datetime.fromisoformat(row["week"])
        assert week == day - timedelta(days=day.weekday())


def test_order_limit_offset_total_count_and_next_page(server: Server, reference: Reference) -> None:
    query = (
        'query($offset: Int!) { metrics(orderBy: [{field: "n", direction: DESC}, {field: "agent.name"}], limit: 3, '
        "offset: $offset) { rows { agent { name } n: verificationCount } totalCount pageInfo { hasNextPage } } }"
    )
    first, rest = (server.graphql(query, {"offset": offset})["data"]["metrics"] for offset in (0, 3))
    expected = sorted(
        reference.compute("verification_count", "agent.name").items(),
        key=lambda item: (-item[1], item[0] is None, item[0] or ""),
    )
    assert [(r["agent"]["name"], r["n"]) for r in first["rows"] + rest["rows"]] == expected
    assert (
        first["totalCount"],
        first["pageInfo"]["hasNextPage"],
        rest["totalCount"],
        rest["pageInfo"]["hasNextPage"],
    ) == (4, True, 4, False)


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "variables", "role", "code", "message"),
    [
        (
            "{ metrics { rows { verificationCont } } }",
            None,
            "analyst",
            "UNKNOWN_FIELD",
            "Did you mean 'verificationCount'",
        ),
        (
            '{ metrics(orderBy: [{field: "errorCont"}]) { rows { errorCount } } }',
            None,
            "analyst",
            "UNKNOWN_FIELD",
            "did you mean 'errorCount'",
        ),
        (
            "{ metrics { rows { queryCount tier { name } } } }",
            None,
            "analyst",
            "INVALID_DIMENSION",
            "its dimensions are: agent, time, user",
        ),
        (
            "{ metrics(where: {or: []}) { rows { errorCount } } }",
            None,
            "analyst",
            "INVALID_FILTER",
            "where.or is an empty list",
        ),
        (
            "query($g: TimeGrain!) { metrics { rows { time(grain: $g) errorCount } } }",
            {"g": "FORTNIGHT"},
            "analyst",
            "INVALID_ARGUMENT",
            "'FORTNIGHT' does not exist",
        ),
        ("{ metrics(limit: 51) { rows { errorCount } } }", None, "analyst", "LIMIT_EXCEEDED", "maximum of 50"),
        (
            "{ metrics { rows { time(grain: HOUR) verificationCount } } }",
            None,
            "analyst",
            "LIMIT_EXCEEDED",
            "more than the maximum of 50",
        ),
        ("{ agents(limit: 51) { name } }", None, "analyst", "LIMIT_EXCEEDED", "maximum of 50"),
        (
            "{ metrics { rows { tier { name { deeper } } } } }",
            None,
            "analyst",
            "LIMIT_EXCEEDED",
            "exceeds maximum operation depth of 3",
        ),
        (
            "{ metrics { rows { " + " ".join(f"a{i}: errorCount" for i in range(51)) + " } } }",
            None,
            "analyst",
            "LIMIT_EXCEEDED",
            "51 aliases found",
        ),
        (
            "{ metrics { rows { " + "errorCount " * 2001 + "} } }",
            None,
            "analyst",
            "LIMIT_EXCEEDED",
            "more than 2000 tokens",
        ),
        ('{ explain(metrics: ["errorCount"]) { sql } }', None, "viewer", "FORBIDDEN", "needs the analyst role"),
    ],
    ids=lambda value: value if isinstance(value, str) and value.isupper() else None,
)
def test_error_codes_over_http(
    server: Server, query: str, variables: dict[str, Any] | None, role: str | None, code: str, message: str
) -> None:
    errors = server.graphql(query, variables, role=role)["errors"]
    matching = [e for e in errors if e["extensions"]["code"] == code]
    assert matching and message in matching[0]["message"], errors


def test_a_request_without_a_valid_key_is_refused_with_401(server: Server) -> None:
    for headers, says in (({}, "Authorization: Bearer"), ({"authorization": "Bearer not-a-key"}, "not valid")):
        response = httpx.post(
            f"{server.base}/graphql", json={"query": "{ metrics { rows { errorCount } } }"}, headers=headers
        )
        error = response.json()["errors"][0]
        assert (response.status_code, response.headers["www-authenticate"], error["extensions"]["code"]) == (
            401,
            "Bearer",
            "UNAUTHORIZED",
        )
        assert says in error["message"]


def test_http_refusals_are_json(server: Server) -> None:
    too_big = httpx.post(
        f"{server.base}/graphql",
        content=b'{"query": "' + b" " * 100_001 + b'"}',
        headers={"content-type": "application/json"},
    )
    not_json = httpx.post(f"{server.base}/graphql", content=b"not json", headers={"content-type": "application/json"})
    no_query = httpx.get(f"{server.base}/graphql", headers={"accept": "application/json"})
    assert [(r.status_code, r.json()["errors"][0]["extensions"]["code"]) for r in (too_big, not_json, no_query)] == [
        (413, "LIMIT_EXCEEDED"),
        (400, "BAD_REQUEST"),
        (400, "BAD_REQUEST"),
    ]
    answer = httpx.get(
        f"{server.base}/graphql",
        params={"query": "{ metrics { rows { errorCount } } }"},
        headers={"authorization": f"Bearer {KEYS['viewer']}"},
    )
    assert answer.json()["data"] == {"metrics": {"rows": [{"errorCount": 20}]}}
    page = httpx.get(f"{server.base}/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql.min.js" in page.text


def test_healthz_is_200_with_the_last_etl_run(server: Server) -> None:
    response = httpx.get(f"{server.base}/healthz")
    assert response.status_code == 200 and response.json()["lastEtlRun"]["status"] == "succeeded"


def test_healthz_needs_no_key_and_shows_the_etl_error_only_to_an_admin(server: Server) -> None:
    """An ETL error can quote source values: status and times for everyone, the text for an admin key."""
    seen = {
        role: httpx.get(f"{server.base}/healthz", headers={"authorization": f"Bearer {KEYS[role]}"} if role else {})
        for role in (None, "viewer", "analyst", "admin")
    }
    assert {role: response.status_code for role, response in seen.items()} == dict.fromkeys(seen, 200)
    for role in (None, "viewer", "analyst"):
        assert set(seen[role].json()["lastEtlRun"]) == {"status", "startedAt", "finishedAt"}, role
    assert seen["admin"].json()["lastEtlRun"]["error"] is None


def test_a_query_past_the_statement_timeout_is_cancelled(broken: Server) -> None:
    heavy = "{ metrics { rows { time(grain: MINUTE) p99VerificationDurationMs p50VerificationDurationMs } } }"
    if broken.backend == "duckdb":
        error = broken.error(heavy, role=None)
    else:
        engine = sa.create_engine(broken.warehouse, poolclass=sa.pool.NullPool)
        with engine.connect() as connection, connection.begin():
            connection.execute(sa.text("LOCK TABLE fact_verifications IN ACCESS EXCLUSIVE MODE"))
            error = broken.error(heavy, role=None)
        engine.dispose()
    assert error["extensions"]["code"] == "TIMEOUT" and "was cancelled" in error["message"]


def _masked(server: Server, query: str, table: str) -> None:
    """``query`` fails inside the warehouse on ``table``: the client sees a request id, the log the details."""
    error = server.error(query, role=None)
    request_id = error["extensions"]["requestId"]
    assert (
        error["extensions"]["code"] == "INTERNAL" and request_id in error["message"] and table not in error["message"]
    )
    deadline = time.monotonic() + 5
    while f"request {request_id} failed" not in server.log.read_text():
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.1)
    assert table in server.log.read_text().split(f"request {request_id} failed", 1)[1]


def test_an_unexpected_failure_is_masked_with_a_request_id_in_the_log(broken: Server) -> None:
    _masked(broken, "{ metrics { rows { ghostCount } } }", "fact_ghosts")
    if broken.backend == "postgresql":  # another process cannot open a DuckDB file the server holds
        engine = sa.create_engine(broken.warehouse, poolclass=sa.pool.NullPool)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE fact_errors"))
        engine.dispose()
        _masked(broken, "{ metrics { rows { errorCount } } }", "fact_errors")


def test_healthz_is_503_when_the_warehouse_cannot_answer(broken: Server) -> None:
    response = httpx.get(f"{broken.base}/healthz")
    body = response.json()  # no API keys: everyone is admin and sees the detail
    assert (response.status_code, body["status"], body["warehouse"]) == (503, "error", "unavailable")
    assert body["detail"] and "SELECT" not in body["detail"], "the driver's text may quote SQL; it stays in the log"


# --- the ETL inside the server, GraphiQL in a browser --------------------------------------------


def test_scheduled_etl_inside_the_server_shows_new_data_without_restart(tmp_path: Path) -> None:
    source = build_source(f"sqlite:///{tmp_path / 'source.sqlite'}")
    warehouse = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    run_etl(source.url, warehouse, hash_key="k")
    for server in start_server(
        tmp_path / "server.log", "--warehouse", warehouse, "--source", source.url, "--etl-every", "0.3"
    ):
        count = "{ metrics { rows { verificationCount } } }"
        assert server.graphql(count)["data"]["metrics"]["rows"] == [{"verificationCount": 60}]
        later = T0 + timedelta(days=30)
        source.insert("action_contracts", {"contract_id": "new", "created_at": later, "updated_at": later})
        deadline = time.monotonic() + 20
        while server.graphql(count)["data"]["metrics"]["rows"] != [{"verificationCount": 61}]:
            assert time.monotonic() < deadline, "the scheduled ETL did not bring the new row"
            time.sleep(0.2)
        time.sleep(1.5)  # more runs, which re-read the new row in their overlap window: not a change
        loaded = re.findall(r"loaded \d+ changed source rows", server.log.read_text())
        assert loaded == ["loaded 1 changed source rows"], server.log.read_text()
    source.dispose()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("server", ["duckdb"], indirect=True)
def test_graphiql_runs_a_query_in_a_real_browser_offline(server: Server) -> None:
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        context = browser.new_context(
            viewport={"width": 1400, "height": 900}, extra_http_headers={"authorization": f"Bearer {KEYS['analyst']}"}
        )
        page = context.new_page()

        def only_loopback(route: object) -> None:
            host = urlparse(route.request.url).hostname  # type: ignore[attr-defined]
            if host == "127.0.0.1":
                route.continue_()  # type: ignore[attr-defined]
            else:
                outside.append(route.request.url)  # type: ignore[attr-defined]
                route.abort()  # type: ignore[attr-defined]

        page.route("**/*", only_loopback)
        page.goto(f"{server.base}/graphql")
        page.wait_for_selector(".graphiql-query-editor .CodeMirror")
        page.evaluate(
            "q => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q)",
            "{ metrics { rows { tier { name } verificationCount } } }",
        )
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
