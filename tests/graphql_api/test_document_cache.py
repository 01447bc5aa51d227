"""Documents are parsed and validated once per text, with the same answers as the first time."""

from __future__ import annotations

from graphql_api.document_cache import MAX_TEXT, DocumentCache
from graphql_api.schema import build_schema
from metrics.registry import load_registry
from tests.graphql_api.conftest import Api

COUNT = "{ metrics { rows { verificationCount } } }"


async def test_a_repeated_invalid_query_gets_the_same_coded_errors(api: Api) -> None:
    for query, code in (("{ metrics { rows { nope } } }", "UNKNOWN_FIELD"), ("{ metrics {", "BAD_REQUEST")):
        first, again = await api(query), await api(query)
        assert first == again and first["errors"][0]["extensions"]["code"] == code, first


async def test_the_operation_name_is_part_of_the_key(api: Api) -> None:
    document = "query Errors { metrics { rows { errorCount } } } query Count " + COUNT
    unnamed = await api.client.post("/graphql", json={"query": document})
    named = await api.client.post("/graphql", json={"query": document, "operationName": "Count"})
    again = await api.client.post("/graphql", json={"query": document})
    assert named.json()["data"] == {"metrics": {"rows": [{"verificationCount": 60}]}}
    assert unnamed.json() == again.json() and unnamed.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_the_cache_is_bounded() -> None:
    cache = DocumentCache(size=2)
    schema = build_schema(load_registry())
    schema.extensions = [*schema.extensions[:-1], cache.extension]
    for i in range(5):
        result = await schema.execute(f"{{ a{i}: __typename }}")
        assert result.data == {f"a{i}": "Query"}
    assert len(cache.documents.entries) == 2 and len(cache.validations.entries) == 2


async def test_long_texts_are_not_kept() -> None:
    cache = DocumentCache()
    schema = build_schema(load_registry())
    schema.extensions = [*schema.extensions[:-1], cache.extension]
    padded = "{ __typename }" + " " * MAX_TEXT
    assert (await schema.execute(padded)).data == {"__typename": "Query"}
    assert not cache.documents.entries and not cache.validations.entries
