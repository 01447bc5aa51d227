"""Hostile input against the real server over HTTP, on DuckDB and PostgreSQL.

Every answer must hold the same invariants, whatever was sent: no 5xx, every
error has a code, no INTERNAL (the warehouse is healthy), no request over 5 s,
and the server keeps answering ``{ __typename }`` in under 100 ms while a
hostile request runs. Hand-written cases cover each way input once broke the
server (issue 10); hypothesis-graphql adds queries generated from the schema,
valid and invalid. JSON-body cases (malformed bodies) live with the HTTP
handling's own tests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis_graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes

from graphql_api.settings import WAREHOUSE_ENV
from tests.graphql_api.test_server import Server, start_server
from tests.small_source import build_source
from warehouse.etl import run_etl

SLOWEST = 5.0
"""Seconds any request may take."""
ROWS = "{ rows { errorCount } }"
JSON_BODY = {"content-type": "application/json"}


def hostile_answer(server: Server, payload: dict[str, Any]) -> dict[str, Any]:
    """POST ``payload``; assert the invariants every answer holds; the JSON answer."""
    started = time.perf_counter()
    content = json.dumps(payload).encode()  # ASCII escapes: a lone surrogate travels as \ud800, as a client sends it
    response = httpx.post(f"{server.base}/graphql", content=content, headers=JSON_BODY, timeout=30)
    elapsed = time.perf_counter() - started
    assert response.status_code < 500, response.text[:500]
    assert elapsed < SLOWEST, f"{elapsed:.1f} s for {json.dumps(payload)[:300]}"
    body = response.json()
    for error in body.get("errors") or ():
        code = (error.get("extensions") or {}).get("code")
        assert code and code != "INTERNAL", f"{error} for {json.dumps(payload)[:300]}"
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors") or ()]


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    backend = request.param
    root = tmp_path_factory.mktemp(f"fuzz_{backend}")
    source = build_source(f"sqlite:///{root / 'source.sqlite'}")
    create: Callable[[], str] = request.getfixturevalue("pg_database") if backend == "postgresql" else str
    url = f"duckdb:///{root / 'warehouse.duckdb'}" if backend == "duckdb" else create()
    run_etl(source.url, url, hash_key="k")
    source.dispose()
    url = url.replace("postgresql+psycopg", "postgresql+asyncpg")
    yield from start_server(root / "server.log", env={WAREHOUSE_ENV: url}, backend=backend, warehouse=url)


def bomb(levels: int) -> str:
    fragments = " ".join(f"fragment F{i} on Query {{ __typename ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    return f"query {{ ...F0 }} {fragments} fragment F{levels} on Query {{ __typename }}"


def bomb_of(size: int) -> str:
    """The largest fragment bomb of whole fragments within ``size`` characters."""
    text = bomb(size // 40)
    return text[: text.rindex(" fragment", 0, size)]


def nested_not(depth: int) -> str:
    return "{not: " * depth + '{tier: {name: {eq: "Observe"}}}' + "}" * depth


def nested_json(depth: int) -> str:
    return '{"not": ' * depth + '{"tier": {"name": {"eq": "Observe"}}}' + "}" * depth


def metrics(arguments: str, rows: str = ROWS, *, variables: str = "") -> str:
    operation = f"query({variables}) " if variables else ""
    return f"{operation}{{ metrics{f'({arguments})' if arguments else ''} {rows} }}"


STRING_EQ = "where: {tier: {name: {eq: $s}}}"
LIKE = "where: {tier: {name: {like: $s}}}"
HOSTILE: list[tuple[str, str, dict[str, Any] | None, str | None]] = [
    ("bomb of 2 KB", bomb_of(2_000), None, "LIMIT_EXCEEDED"),
    ("bomb of 90 KB", bomb_of(90_000), None, "LIMIT_EXCEEDED"),
    ("unknown fragment", "{ ...Nope }", None, "BAD_REQUEST"),
    (
        "fragment cycle",
        "{ ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }",
        None,
        "BAD_REQUEST",
    ),
    ("not 70 deep", metrics(f"where: {nested_not(70)}"), None, "LIMIT_EXCEEDED"),
    ("not 199 deep", metrics(f"where: {nested_not(199)}"), None, "LIMIT_EXCEEDED"),
    ("not 15 deep", metrics(f"where: {nested_not(15)}"), None, None),
    *(
        (f"not {depth} deep in a variable", metrics("where: $w", variables="$w: MetricsWhere"), {"w": w}, code)
        for depth, code in ((16, None), (17, "LIMIT_EXCEEDED"), (150, "LIMIT_EXCEEDED"), (250, "LIMIT_EXCEEDED"))
        for w in [json.loads(nested_json(depth))]
    ),
    ("from near year 1", metrics('where: {time: {from: "0001-01-01T00:30:00+01:00"}}'), None, "INVALID_FILTER"),
    ("to near year 9999", metrics('where: {time: {to: "9999-12-31T23:00:00-02:00"}}'), None, "INVALID_FILTER"),
    (
        "the whole calendar far east",
        metrics(
            'where: {time: {from: "0001-01-01T00:00:00Z", to: "9999-12-31T00:00:00Z"}}, timezone: "Pacific/Kiritimati"',
            "{ rows { time(grain: YEAR) errorCount } }",
        ),
        None,
        None,
    ),
    *(
        (
            f"time zone {zone[:20]}",
            metrics("timezone: $tz", variables="$tz: TimeZone!"),
            {"tz": zone},
            "INVALID_ARGUMENT",
        )
        for zone in ("localtime", "posixrules", "right/UTC", "posix/Europe/Berlin", "CET", "x" * 300)
    ),
    # A lone surrogate is no Unicode text: the JSON body carrying one is refused before GraphQL reads it,
    # and a GraphQL string escaping one does not parse.
    ("time zone \\ud800", metrics("timezone: $tz", variables="$tz: TimeZone!"), {"tz": "\ud800"}, "BAD_REQUEST"),
    (
        "member metrics zone",
        '{ agents { name metrics(timezone: "posixrules") { queryCount } } }',
        None,
        "INVALID_ARGUMENT",
    ),
    (
        "table zone",
        '{ table(metrics: ["errorCount"], timezone: "localtime") { totalCount } }',
        None,
        "INVALID_ARGUMENT",
    ),
    ("explain zone", '{ explain(metrics: ["errorCount"], timezone: "right/UTC") { sql } }', None, "INVALID_ARGUMENT"),
    ("lone surrogate", metrics(STRING_EQ, variables="$s: String"), {"s": "\ud800"}, "BAD_REQUEST"),
    ("escaped lone surrogate", metrics('where: {tier: {name: {eq: "\\ud800"}}}'), None, "BAD_REQUEST"),
    ("NUL", metrics("where: {tier: {name: {in: $s}}}", variables="$s: [String!]"), {"s": ["a\x00b"]}, "INVALID_FILTER"),
    ("like ending in \\", metrics(LIKE, variables="$s: String"), {"s": "Obs\\"}, "INVALID_FILTER"),
    ("like with escapes", metrics(LIKE, variables="$s: String"), {"s": "Obs\\erv\\_%"}, None),
    (
        "32,767 values",
        metrics("where: {tier: {level: {in: $s}}}", variables="$s: [Int!]"),
        {"s": [1] * 32_767},
        "LIMIT_EXCEEDED",
    ),
    (
        "a filter repeated for 4 facts",
        metrics(
            "where: {hourOfDay: {notIn: $s}}",
            "{ rows { errorCount verificationCount queryCount approvalCount } }",
            variables="$s: [Int!]",
        ),
        {"s": [99] * 9_000},
        "LIMIT_EXCEEDED",
    ),
    ("Int overflow", metrics("limit: 99999999999"), None, "INVALID_ARGUMENT"),
    ("negative offset", metrics("offset: -1"), None, "INVALID_ARGUMENT"),
    ("no metric", metrics("", "{ rows { tier { name } } }"), None, "INVALID_ARGUMENT"),
    ("variable of the wrong type", metrics("limit: $n", variables="$n: Int"), {"n": "ten"}, "INVALID_ARGUMENT"),
]


@pytest.mark.parametrize(("name", "query", "variables", "code"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_requests_get_coded_answers(
    server: Server, name: str, query: str, variables: dict[str, Any] | None, code: str | None
) -> None:
    body = hostile_answer(server, {"query": query, "variables": variables})
    assert codes(body) == ([code] if code else []), body


def test_both_backends_read_a_like_pattern_alike(server: Server) -> None:
    """Backslash escapes % and _ on both (PostgreSQL's default; DuckDB's only with ESCAPE)."""
    query = "query($p: String) { metrics(where: {tier: {name: {like: $p}}}) { rows { tier { name } errorCount } } }"
    everything = hostile_answer(server, {"query": query, "variables": {"p": "%"}})["data"]["metrics"]["rows"]
    literal = hostile_answer(server, {"query": query, "variables": {"p": "Obs\\%"}})["data"]["metrics"]["rows"]
    assert everything and literal == []


def test_a_large_not_in_answers_like_no_filter(server: Server) -> None:
    query = "query($s: [String!]) { metrics(where: {tier: {name: {notIn: $s}}}) { rows { tier { name } errorCount } } }"
    unfiltered = hostile_answer(server, {"query": query, "variables": {"s": []}})
    started = time.perf_counter()
    filtered = hostile_answer(server, {"query": query, "variables": {"s": [f"t{i}" for i in range(9_999)]}})
    assert time.perf_counter() - started < 5  # about 1 s; rendering its parameters in linear time: test_render
    assert filtered == unfiltered and filtered["data"]["metrics"]["rows"]


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/nope", 404, "no such path '/nope'"),
        ("GET", "/static/nope.js", 404, "no such path '/static/nope.js'"),
        ("DELETE", "/healthz", 405, "DELETE is not allowed on /healthz"),
        ("POST", "/", 405, "POST is not allowed on /"),
    ],
)
def test_http_refusals_are_json_in_the_graphql_error_shape(
    server: Server, method: str, path: str, status: int, message: str
) -> None:
    response = httpx.request(method, f"{server.base}{path}", timeout=10)
    [error] = response.json()["errors"]
    assert response.status_code == status and error["extensions"]["code"] == "BAD_REQUEST"
    assert message in error["message"]


def test_the_root_leads_to_graphiql(server: Server) -> None:
    response = httpx.get(f"{server.base}/", headers={"accept": "text/html"}, follow_redirects=True, timeout=10)
    assert response.status_code == 200 and response.url.path == "/graphql" and "graphiql" in response.text.lower()


def typename_latencies(server: Server, hostile: list[dict[str, Any]], rounds: int) -> list[float]:
    """Seconds ``{ __typename }`` took, asked while ``hostile`` requests run in threads, over and over."""
    running = threading.Event()
    running.set()
    failures: list[BaseException] = []

    def attack(payload: dict[str, Any]) -> None:
        while running.is_set():
            try:
                hostile_answer(server, payload)
            except BaseException as error:  # noqa: BLE001 - reported by the main thread
                failures.append(error)
                return

    threads = [threading.Thread(target=attack, args=(payload,)) for payload in hostile]
    for thread in threads:
        thread.start()
    latencies = []
    with httpx.Client(base_url=server.base, timeout=10) as client:
        time.sleep(0.2)  # the attacks are under way
        for _ in range(rounds):
            started = time.perf_counter()
            assert client.post("/graphql", json={"query": "{ __typename }"}).json() == {"data": {"__typename": "Query"}}
            latencies.append(time.perf_counter() - started)
            time.sleep(0.02)
    running.clear()
    for thread in threads:
        thread.join()
    assert not failures, failures
    return latencies


def test_the_server_stays_responsive_under_hostile_requests(server: Server) -> None:
    """Bombs and a large filter in flight: ``{ __typename }`` still answers fast (median, to ride out a shared CPU)."""
    hostile = [
        {"query": bomb_of(2_000)},
        {
            "query": "query($s: [String!]) { metrics(where: {tier: {name: {notIn: $s}}}) { rows { errorCount } } }",
            "variables": {"s": [f"t{i}" for i in range(9_999)]},
        },
    ]
    latencies = sorted(typename_latencies(server, hostile, rounds=30))
    assert latencies[len(latencies) // 2] < 0.1, latencies


ZONES = st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kolkata", "Nowhere/Atlantis", "posixrules"]).map(nodes.String)
TIMES = st.sampled_from(["2025-11-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "2025-11-01T00:00:00", "soon"]).map(
    nodes.String
)
SCALARS = {"TimeZone": ZONES, "DateTime": TIMES, "JSON": st.just(nodes.String("{}"))}


def fuzz(server: Server, mode: hypothesis_graphql.Mode, examples: int) -> None:
    schema = Path(__file__).parents[2] / "schema.graphql"

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(query=hypothesis_graphql.queries(schema.read_text(), custom_scalars=SCALARS, mode=mode))
    def check(query: str) -> None:
        hostile_answer(server, {"query": query})

    check()


@pytest.mark.parametrize("mode", [hypothesis_graphql.Mode.POSITIVE, hypothesis_graphql.Mode.NEGATIVE])
def test_generated_queries_get_coded_answers(server: Server, mode: hypothesis_graphql.Mode) -> None:
    fuzz(server, mode, examples=40)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [hypothesis_graphql.Mode.POSITIVE, hypothesis_graphql.Mode.NEGATIVE])
def test_many_generated_queries_get_coded_answers(server: Server, mode: hypothesis_graphql.Mode) -> None:
    fuzz(server, mode, examples=400)
