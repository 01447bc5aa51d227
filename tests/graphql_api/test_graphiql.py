"""The GraphiQL page's preloaded examples run without errors (the demo test runs them on demo data too)."""

from __future__ import annotations

import pytest
from graphql import OperationDefinitionNode, parse

from graphql_api.graphiql import EXAMPLE_QUERY, graphiql_page
from tests.graphql_api.conftest import Api

OPERATIONS = [
    d.name.value for d in parse(EXAMPLE_QUERY).definitions if isinstance(d, OperationDefinitionNode) and d.name
]


def test_the_page_preloads_every_example() -> None:
    assert len(OPERATIONS) >= 4 and all(name in graphiql_page() for name in OPERATIONS)


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_each_example_runs_without_errors(api: Api, operation: str) -> None:
    response = await api.client.post("/graphql", json={"query": EXAMPLE_QUERY, "operationName": operation})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body and body["data"], body
