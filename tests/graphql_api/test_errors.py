"""Error codes: GraphQL's own errors (syntax, validation, variables, size limits) are the client's, with a code."""

from __future__ import annotations

from typing import Any

import pytest

from graphql_api.schema import build_schema
from graphql_api.settings import Settings
from metrics.registry import load_registry
from tests.graphql_api.conftest import Api

GRAIN = "query($g: TimeGrain!) { metrics { rows { time(grain: $g) verificationCount } } }"
SMALL = Settings(warehouse_url="", max_depth=4, max_aliases=2, max_tokens=60)


class Anyone:
    """A context for queries that only reach ``catalog``, which needs no warehouse."""

    def require(self, role: str) -> None:
        pass


@pytest.fixture(scope="module")
def schema() -> Any:
    return build_schema(load_registry(), SMALL)


@pytest.mark.parametrize(
    ("query", "variables", "code", "message"),
    [
        (GRAIN, {"g": "FORTNIGHT"}, "INVALID_ARGUMENT", "'FORTNIGHT' does not exist in 'TimeGrain'"),
        (GRAIN, None, "INVALID_ARGUMENT", "non-null type 'TimeGrain!' to be provided"),
        (
            "query($t: DateTime) { metrics(where: {time: {from: $t}}) { rows { errorCount } } }",
            {"t": "soon"},
            "INVALID_ARGUMENT",
            "cannot represent a DateTime",
        ),
        (
            "query($n: Int) { metrics(limit: $n) { rows { errorCount } } }",
            {"n": "ten"},
            "INVALID_ARGUMENT",
            "Int cannot represent",
        ),
        ('{ metrics(limit: "ten") { rows { errorCount } } }', None, "INVALID_ARGUMENT", "Int cannot represent"),
        ("{ metrics(top: 1) { rows { errorCount } } }", None, "UNKNOWN_FIELD", "Unknown argument 'top'"),
        ("query($x: Int) { catalog { metrics { name } } }", {"x": 1}, "BAD_REQUEST", "'$x' is never used"),
        ("{ metrics { rows { errorCount } ", None, "BAD_REQUEST", "Syntax Error"),
        (
            "{ " + " ".join(f"x{i}: catalog {{ metrics {{ name }} }}" for i in range(3)) + " }",
            None,
            "LIMIT_EXCEEDED",
            "3 aliases found",
        ),
        ("{ catalog { metrics { name } } y: catalog { metrics { name } } }", None, None, None),
        ("{ catalog { dimensions { attributes { name } } } }", None, None, None),
        (
            "{ agents { metrics { queryCount } } " + "catalog { metrics { name } } " * 8 + "}",
            None,
            "LIMIT_EXCEEDED",
            "more than 60 tokens",
        ),
    ],
)
async def test_graphql_errors_are_the_clients_with_a_code(
    schema: Any, query: str, variables: Any, code: str | None, message: str | None
) -> None:
    result = await schema.execute(query, variable_values=variables, context_value=Anyone())
    codes = [(e.extensions["code"], e.message) for e in result.errors or ()]
    if code is None:
        assert codes == []
    else:
        [(found, text)] = codes
        assert found == code and message in text, text


async def test_depth_limit_comes_from_settings() -> None:
    deep = "{ catalog { dimensions { attributes { name } } } }"
    shallow = build_schema(load_registry(), Settings(warehouse_url="", max_depth=2))
    [error] = (await shallow.execute(deep, context_value=Anyone())).errors
    assert error.extensions["code"] == "LIMIT_EXCEEDED" and "exceeds maximum operation depth of 2" in error.message


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        ("{ agents(limit: -1) { name } }", "INVALID_ARGUMENT", "must not be negative"),
        ("{ agents(offset: -1) { name } }", "INVALID_ARGUMENT", "must not be negative"),
        ("{ agents(limit: 20000) { name } }", "LIMIT_EXCEEDED", "maximum of 10000"),
        ("{ metrics(limit: -1) { rows { errorCount } } }", "INVALID_ARGUMENT", "must not be negative"),
        ("{ metrics(offset: -3) { rows { errorCount } } }", "INVALID_ARGUMENT", "must not be negative"),
        ('{ table(metrics: ["errorCount"], limit: -1) { totalCount } }', "INVALID_ARGUMENT", "must not be negative"),
        ('{ table(metrics: ["errorCount"], limit: 10001) { totalCount } }', "LIMIT_EXCEEDED", "maximum of 10000"),
        (
            '{ metrics(orderBy: [{field: "errorCont"}]) { rows { n: errorCount } } }',
            "UNKNOWN_FIELD",
            "cannot order by 'errorCont' (did you mean 'errorCount'?)",
        ),
        (
            '{ metrics(orderBy: [{field: "tier.nam"}]) { rows { tier { name } errorCount } } }',
            "UNKNOWN_FIELD",
            "(did you mean 'tier.name'?)",
        ),
        (
            '{ metrics(orderBy: [{field: "verificationCount"}]) { rows { errorCount } } }',
            "UNKNOWN_FIELD",
            "order by a selected metric or dimension attribute",
        ),
        (
            '{ table(metrics: ["errorCount"], orderBy: [{field: "eror_count"}]) { totalCount } }',
            "UNKNOWN_FIELD",
            "did you mean",
        ),
    ],
)
async def test_paging_and_order_arguments_are_checked(api: Api, query: str, code: str, message: str) -> None:
    [error] = (await api(query))["errors"]
    assert error["extensions"]["code"] == code and message in error["message"]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("{or: []}", "where.or is an empty list"),
        ("{and: []}", "where.and is an empty list"),
        ("{not: {or: []}}", "where.or is an empty list"),
        (
            '{time: {from: "2025-12-01T00:00:00"}}',
            "where.time.from: '2025-12-01T00:00:00' has no UTC offset; add one, e.g. 2025-12-01T00:00:00Z",
        ),
        (
            '{time: {from: "2025-11-01T00:00:00Z", to: "2025-12-01T00:00:00"}}',
            "where.time.to: '2025-12-01T00:00:00' has no UTC offset",
        ),
    ],
)
async def test_filters_that_would_mean_something_else_are_refused(api: Api, where: str, message: str) -> None:
    [error] = (await api(f"{{ metrics(where: {where}) {{ rows {{ errorCount }} }} }}"))["errors"]
    assert error["extensions"]["code"] == "INVALID_FILTER" and message in error["message"]


async def test_a_time_bound_with_an_offset_is_accepted(api: Api) -> None:
    body = await api(
        '{ metrics(where: {time: {from: "2025-11-03T10:00:00+01:00", to: "2025-11-04T00:00:00Z"}}) '
        "{ rows { verificationCount } } }"
    )
    # Contracts every 7 hours from 2025-11-03 09:00 UTC: 09:00, 16:00, 23:00 fall in [09:00, 24:00).
    assert body["data"]["metrics"]["rows"] == [{"verificationCount": 3}]


async def test_a_failed_member_batch_is_reported_once(api: Api) -> None:
    body = await api('{ agents { name metrics(where: {tier: {name: {eq: "Observe"}}}) { queryCount } } }')
    assert [m["metrics"] for m in body["data"]["agents"]] == [None, None, None]
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INVALID_DIMENSION" and error["path"] == ["agents", 0, "metrics"]
