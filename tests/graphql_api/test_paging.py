"""totalCount does not depend on the page, and the SQL computes the total only when it is selected.

The small warehouse has 4 agents (3 named and the null member), so a query by
agent has 4 rows: offsets before, at and past the end, and far past it.
"""

from __future__ import annotations

import pytest

from tests.graphql_api.conftest import Api

ROWS = 4
OFFSETS = [0, ROWS - 1, ROWS, ROWS + 1, 2_000_000_000]


@pytest.mark.parametrize("offset", OFFSETS)
async def test_metrics_total_count_is_the_same_on_every_page(api: Api, offset: int) -> None:
    query = (
        "query ($offset: Int!) { metrics(limit: 2, offset: $offset) "
        "{ rows { agent { name } verificationCount } totalCount pageInfo { hasNextPage } } }"
    )
    page = (await api(query, {"offset": offset}))["data"]["metrics"]
    assert page["totalCount"] == ROWS
    assert len(page["rows"]) == max(0, min(2, ROWS - offset))
    assert page["pageInfo"]["hasNextPage"] == (offset + 2 < ROWS)


@pytest.mark.parametrize("offset", OFFSETS)
async def test_table_total_count_is_the_same_on_every_page(api: Api, offset: int) -> None:
    query = (
        'query ($offset: Int!) { table(metrics: ["verificationCount"], dimensions: ["agent.name"], offset: $offset) '
        "{ rows totalCount } }"
    )
    table = (await api(query, {"offset": offset}))["data"]["table"]
    assert (table["totalCount"], len(table["rows"])) == (ROWS, max(0, ROWS - offset))


async def test_an_empty_page_costs_one_more_statement_only_when_the_total_is_selected(api: Api) -> None:
    counted = "{ metrics(offset: 10) { rows { agent { name } verificationCount } totalCount } }"
    assert (await api(counted))["data"]["metrics"] == {"rows": [], "totalCount": ROWS}
    assert api.statements == 2
    api.statements = 0
    plain = "{ metrics(offset: 10) { rows { agent { name } verificationCount } } }"
    assert (await api(plain))["data"]["metrics"] == {"rows": []}
    assert api.statements == 1


BOOKKEEPING = ("FROM etl_settings", "rollup_definitions", "information_schema.tables")
"""The data version, read with every request, and which rollups the warehouse holds, read when it changes."""


async def test_the_row_count_window_is_computed_only_when_the_total_is_selected(uncached_api: Api) -> None:
    api = uncached_api
    sql: list[str] = []
    backend = api.app.state.engine.backend
    fetch = backend.fetch

    async def recording(text: str, params: list[object], *, timeout: float) -> object:
        if not any(read in text for read in BOOKKEEPING):
            sql.append(text)
        return await fetch(text, params, timeout=timeout)

    backend.fetch = recording
    await api("{ metrics { rows { agent { name } verificationCount } } }")
    await api("{ metrics { rows { agent { name } verificationCount } pageInfo { hasNextPage } } }")
    await api('{ table(metrics: ["verificationCount"]) { rows } }')
    await api('{ table(metrics: ["verificationCount"]) { rows totalCount } }')
    assert ["OVER ()" in text for text in sql] == [False, True, False, True]
