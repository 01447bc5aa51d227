"""Bodies and methods Strawberry would answer with a plain-text 500 or 405: JSON refusals with a code."""

from __future__ import annotations

import pytest

from tests.graphql_api.conftest import Api

JSON = {"content-type": "application/json"}
DEEP = b"[" * 1001 + b"]" * 1001


def _refusal(response: object, status: int) -> str:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    [error] = response.json()["errors"]  # type: ignore[attr-defined]
    assert error["extensions"] == {"code": "BAD_REQUEST"}, error
    return error["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"null", "must be an object"),
        (b"1", "must be an object"),
        (b'"x"', "must be an object"),
        (b"[]", "must be an object"),
        (DEEP, "must be an object"),
        (b'{"query": "{ __typename }", "variables": {"v": ' + DEEP + b"}}", "deeper than 1000 levels"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
        (b'{"query": "{ __typename }", "variables": {"v": ' + b"7" * 4301 + b"}}", "not valid JSON"),
        (b'{"query": "{ __typename \xff }"}', "not valid JSON"),
        (b"{nope", "not valid JSON"),
    ],
)
async def test_bodies_that_are_not_a_graphql_request_are_400(api: Api, body: bytes, message: str) -> None:
    response = await api.client.post("/graphql", content=body, headers=JSON)
    assert message in _refusal(response, 400)


async def test_json_nested_1000_levels_is_a_graphql_answer(api: Api) -> None:
    nested = b"[" * 998 + b"]" * 998  # inside the request object and its variables: 1000 levels
    body = b'{"query": "{ __typename }", "variables": {"v": ' + nested + b"}}"
    response = await api.client.post("/graphql", content=body, headers=JSON)
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_a_body_that_is_not_json_is_415(api: Api, content_type: str) -> None:
    response = await api.client.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers={"content-type": content_type}
    )
    assert "Content-Type: application/json" in _refusal(response, 415)


async def test_json_with_a_charset_is_json(api: Api) -> None:
    response = await api.client.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers={"content-type": "application/json; charset=utf-8"}
    )
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_are_a_json_405(api: Api, method: str) -> None:
    response = await api.client.request(method, "/graphql", json={"query": "{ __typename }"})
    assert "use GET or POST" in _refusal(response, 405)
    assert response.headers["allow"] == "GET, HEAD, POST"


async def test_answers_are_utf8_json(api: Api) -> None:
    response = await api.client.post(
        "/graphql", json={"query": "{ metrics { rows { tier { name } n: verificationCount } } }"}
    )
    assert response.headers["content-type"] == "application/json" and response.json()["data"]["metrics"]["rows"]
