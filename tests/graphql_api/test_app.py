"""The HTTP surface: GraphiQL only for browsers, GET queries, JSON errors, the body cap, health."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from tests.graphql_api.conftest import Api, open_api

HTML = {"accept": "text/html,application/xhtml+xml"}
COUNT = "{ metrics { rows { verificationCount } } }"


@pytest.fixture
async def small_api(duckdb_warehouse: str) -> AsyncIterator[Api]:
    async for opened in open_api(duckdb_warehouse, max_body_bytes=2_000, max_tokens=100):
        yield opened


def _code(response: object) -> str:
    return response.json()["errors"][0]["extensions"]["code"]  # type: ignore[attr-defined]


async def test_graphiql_is_served_to_browsers_from_local_assets(api: Api) -> None:
    page = await api.client.get("/graphql", headers=HTML)
    assert page.status_code == 200 and "/static/graphiql.min.js" in page.text and "unpkg" not in page.text
    assert (await api.client.get("/static/graphiql.min.js")).status_code == 200


async def test_get_with_a_query_executes_it_even_from_a_browser(api: Api) -> None:
    for headers, cache in (({"accept": "application/json"}, "miss"), (HTML, "hit")):
        response = await api.client.get("/graphql", params={"query": COUNT}, headers=headers)
        assert response.status_code == 200 and response.json() == {
            "data": {"metrics": {"rows": [{"verificationCount": 60}]}},
            "extensions": {"cache": cache},
        }


async def test_get_without_a_query_from_a_program_is_a_json_error(api: Api) -> None:
    response = await api.client.get("/graphql", headers={"accept": "application/json"})
    assert (
        response.status_code == 400
        and _code(response) == "BAD_REQUEST"
        and "POST JSON" in response.json()["errors"][0]["message"]
    )


async def test_malformed_requests_get_json_errors(api: Api) -> None:
    bad_json = await api.client.post("/graphql", content=b"{nope", headers={"content-type": "application/json"})
    no_query = await api.client.post("/graphql", json={"variables": {}})
    for response in (bad_json, no_query):
        assert response.status_code == 400 and _code(response) == "BAD_REQUEST", response.text
    assert "JSON" in bad_json.json()["errors"][0]["message"]


async def test_a_document_of_several_operations_runs_the_one_it_names(api: Api) -> None:
    document = "query Errors { metrics { rows { errorCount } } } query Count " + COUNT
    named = await api.client.post("/graphql", json={"query": document, "operationName": "Count"})
    unnamed = await api.client.post("/graphql", json={"query": document})
    unknown = await api.client.post("/graphql", json={"query": document, "operationName": "Nope"})
    assert named.json()["data"] == {"metrics": {"rows": [{"verificationCount": 60}]}}
    assert unnamed.json()["data"] is None and _code(unnamed) == "BAD_REQUEST"
    assert (
        "2 operations (Errors, Count); name the one to run with operationName" in unnamed.json()["errors"][0]["message"]
    )
    assert unknown.status_code == 400 and _code(unknown) == "BAD_REQUEST" and "Nope" in unknown.text


async def test_a_body_over_the_cap_is_refused_before_parsing(small_api: Api) -> None:
    huge = "{ " + "catalog { metrics { name } } " * 100 + "}"
    declared = await small_api.client.post("/graphql", json={"query": huge})

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b'{"query": "' + b" " * 500

    streamed = await small_api.client.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    for response in (declared, streamed):
        assert response.status_code == 413 and _code(response) == "LIMIT_EXCEEDED" and "2,000 bytes" in response.text
    assert small_api.statements == 0


async def test_a_query_over_the_token_limit_is_limit_exceeded(small_api: Api) -> None:
    body = await small_api("{ " + "catalog { metrics { name } } " * 20 + "}")
    assert (
        body["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
        and "more than 100 tokens" in body["errors"][0]["message"]
    )
    assert (await small_api(COUNT))["data"]["metrics"]["rows"] == [{"verificationCount": 60}]


async def test_a_long_query_under_the_body_cap_stops_at_the_token_limit_quickly(api: Api) -> None:
    query = "{ metrics { rows { " + "errorCount " * 9_000 + "} } }"
    assert len(query.encode()) < api.app.state.graphql.settings.max_body_bytes
    started = time.monotonic()
    body = await api(query)
    assert body["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED" and time.monotonic() - started < 2


async def test_health_reports_the_last_etl_run(api: Api) -> None:
    health = (await api.client.get("/healthz")).json()
    assert health["status"] == "ok" and health["lastEtlRun"]["status"] == "succeeded"
