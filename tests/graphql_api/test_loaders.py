"""Batching of ``metrics`` fields: merged only where merging cannot change an answer."""

from __future__ import annotations

import pytest

from tests.graphql_api.conftest import Api


@pytest.fixture
def api(uncached_api: Api) -> Api:
    """These count the queries batching costs."""
    return uncached_api


ERRORS_BY_TIER = (
    'metrics(orderBy: [{field: "tier.name"}]) { rows { tier { name } errorCount } totalCount pageInfo { hasNextPage } }'
)
VERIFICATIONS_BY_TIER = (
    'metrics(orderBy: [{field: "tier.name"}]) { rows { tier { name } verificationCount } totalCount }'
)
PAGED_ERRORS = (
    'metrics(orderBy: [{field: "tier.name", direction: DESC}], limit: 1) '
    "{ rows { tier { name } errorCount } totalCount pageInfo { hasNextPage } }"
)


async def _alone(api: Api, field: str) -> object:
    return (await api(f"{{ x: {field} }}"))["data"]["x"]


@pytest.mark.parametrize(
    "other", [VERIFICATIONS_BY_TIER, PAGED_ERRORS.replace("errorCount", "verificationCount")], ids=["all", "paged"]
)
async def test_fields_over_different_facts_answer_as_they_do_alone(api: Api, other: str) -> None:
    # Errors exist for two tiers, verifications for three: a merged query would give errors a third row.
    for field in (ERRORS_BY_TIER, PAGED_ERRORS):
        alone_a, alone_b = await _alone(api, field), await _alone(api, other)
        api.statements = 0
        together = (await api(f"{{ a: {field} b: {other} }}"))["data"]
        assert together == {"a": alone_a, "b": alone_b}
        assert api.statements == 2


async def test_table_beside_metrics_over_another_fact_keeps_its_rows(api: Api) -> None:
    table = (
        'table(metrics: ["errorCount"], dimensions: ["tier.name"], orderBy: [{field: "tier.name"}]) { rows totalCount }'
    )
    alone = await _alone(api, table)
    together = (await api(f"{{ t: {table} m: {VERIFICATIONS_BY_TIER} }}"))["data"]
    assert together["t"] == alone and alone["totalCount"] == 2


async def test_fields_sharing_facts_and_arguments_cost_one_query_per_fact(api: Api) -> None:
    fields = [
        "metrics { rows { tier { name } verificationCount } }",
        "metrics { rows { tier { name } verificationSuccessRate } totalCount }",
        "metrics { rows { tier { name } p95VerificationDurationMs } }",
        "metrics { rows { tier { name } errorCount } }",
        "metrics { rows { tier { name } errorCount } totalCount }",
    ]
    body = await api("{ " + " ".join(f"f{i}: {field}" for i, field in enumerate(fields)) + " }")
    assert api.statements == 2
    assert [len(body["data"][f"f{i}"]["rows"]) for i in range(5)] == [3, 3, 3, 2, 2]


async def test_same_fact_with_other_dimensions_is_not_merged(api: Api) -> None:
    body = await api(
        "{ a: metrics { rows { tier { name } verificationCount } } "
        "b: metrics { rows { agent { name } verificationCount } } }"
    )
    assert api.statements == 2
    assert len(body["data"]["a"]["rows"]) == 3 and len(body["data"]["b"]["rows"]) == 4


async def test_having_on_a_metric_only_another_field_selects_is_refused(api: Api) -> None:
    body = await api(
        "{ a: metrics(having: {errorCount: {gt: 0}}) { rows { tier { name } errorCount } } "
        "b: metrics(having: {errorCount: {gt: 0}}) { rows { tier { name } autoResolutionRate } } }"
    )
    assert body["data"] is None or body["data"]["b"] is None
    [error] = body["errors"]
    assert (
        error["path"] == ["b"]
        and error["extensions"]["code"] == "INVALID_FILTER"
        and "having names errorCount, which is not selected" in error["message"]
    )
