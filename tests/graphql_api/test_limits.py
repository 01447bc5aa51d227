"""Document limits: measured in linear time before any validation rule, so no document can make validation slow."""

from __future__ import annotations

import time
from typing import Any

import pytest
from graphql import get_introspection_query, parse

from graphql_api.limits import MAX_REPEATS, DocumentLimits, Limits, Measured
from graphql_api.schema import build_schema
from graphql_api.settings import Settings
from metrics.registry import load_registry


class Anyone:
    """A context for queries that only reach ``catalog``, which needs no warehouse."""

    def require(self, role: str) -> None:
        pass


def bomb(levels: int) -> str:
    """Each fragment spreads the next twice: the expanded document has 2^levels fields."""
    fragments = " ".join(f"fragment F{i} on Query {{ __typename ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    return f"query {{ ...F0 }} {fragments} fragment F{levels} on Query {{ __typename }}"


def sized(document: str) -> Any:
    [(_, _, size)] = [entry for entry in Measured(parse(document)).sizes() if not entry[0].startswith("fragment")]
    return size


@pytest.fixture(scope="module")
def schema() -> Any:
    return build_schema(load_registry(), Settings(warehouse_url="", max_tokens=100_000, max_cost=200))


async def errors(schema: Any, document: str) -> list[tuple[str, str]]:
    result = await schema.execute(document, context_value=Anyone())
    return [(e.extensions["code"], e.message) for e in result.errors or ()]


def test_sizes_count_fragments_as_expanded() -> None:
    document = "{ a: catalog { ...M } b: catalog { ...M } } fragment M on Catalog { metrics { name x: label } }"
    size = sized(document)
    assert (size.depth, size.aliases, size.cost) == (2, 4, 8)


def test_introspection_is_not_deep_but_costs() -> None:
    size = sized("{ __schema { types { fields { type { ofType { ofType { name } } } } } } }")
    assert (size.depth, size.cost, size.lists) == (0, 7, 2)


@pytest.mark.parametrize("levels", [30, 4_000])
def test_a_fragment_bomb_is_measured_in_linear_time(levels: int) -> None:
    """Expanding the bomb takes 2^levels steps (minutes at 30 levels); measuring it takes milliseconds.

    Timed in CPU seconds, which a loaded machine does not stretch; the bound is far above the measured ~0.1 s at
    4,000 levels and far below what any expansion would take.
    """
    document = parse(bomb(levels))
    started = time.process_time()
    problems = DocumentLimits(Limits(12, 50, 1_000)).problems(Measured(document))
    assert time.process_time() - started < 10
    assert problems is not None and "selects over 1,000,000,000 fields" in problems[1][0]


def test_cycles_and_unknown_fragments_count_nothing() -> None:
    size = sized("{ ...A ...Nope } fragment A on Query { __typename ...B } fragment B on Query { __typename ...A }")
    assert size.cost == 2


def test_a_long_chain_of_fragments_needs_no_recursion() -> None:
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(5_000))
    assert sized(f"{{ ...F0 }} {chain} fragment F5000 on Query {{ __typename }}").cost == 1


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (bomb(35), "selects over 1,000,000,000 fields once fragments are expanded, more than the maximum of 200"),
        ("{ " + " ".join(f"a{i}: __typename" for i in range(51)) + " }", "51 aliases found. Allowed: 50"),
        ("{ " + "catalog { metrics { name } } " * (MAX_REPEATS + 1) + "}", f"repeats a field {MAX_REPEATS + 1} times"),
        (
            "{ ...A ...B } fragment A on Query { "
            + "__typename " * 6
            + "} fragment B on Query { "
            + "__typename " * 6
            + "}",
            "repeats a field 12 times in one selection set (fragments included)",
        ),
        (
            "{ __typename } fragment Unused on Query { " + "catalog { metrics { name } } " * 60 + "}",
            "'fragment Unused' repeats a field 60 times",
        ),
        (
            "{ "
            + " ".join(f"...F{i}" for i in range(51))
            + " } "
            + " ".join(f"fragment F{i} on Query {{ __typename }}" for i in range(51)),
            "spreads 51 fragments",
        ),
        (
            "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }",
            "nests 4 introspection lists",
        ),
        ("{ " + "catalog { " * 14 + "}" * 14 + " }", "exceeds maximum operation depth of 12"),
    ],
)
async def test_documents_over_a_limit_are_refused_before_validation(schema: Any, document: str, message: str) -> None:
    started = time.process_time()
    found = await errors(schema, document)
    elapsed = time.process_time() - started
    assert [code for code, _ in found] == ["LIMIT_EXCEEDED"] and message in found[0][1], found
    assert elapsed < 0.5, f"refusing took {elapsed:.3f} s"


async def test_graphiqls_schema_query_passes(schema: Any) -> None:
    query = get_introspection_query(descriptions=True, specified_by_url=True, input_value_deprecation=True)
    assert await errors(build_schema(load_registry()), query) == []


@pytest.mark.parametrize(
    ("document", "code", "message"),
    [
        ("{ ...Nope }", "BAD_REQUEST", "Unknown fragment 'Nope'."),
        ("{ ...A } fragment A on Query { ...A }", "BAD_REQUEST", "Cannot spread fragment 'A' within itself"),
    ],
)
async def test_broken_fragments_get_the_standard_rules_coded_errors(
    schema: Any, document: str, code: str, message: str
) -> None:
    [(found, text)] = await errors(schema, document)
    assert found == code and message in text


async def test_the_cost_limit_comes_from_settings() -> None:
    tight = build_schema(load_registry(), Settings(warehouse_url="", max_cost=3))
    document = "{ catalog { metrics { name } } }"
    assert await errors(tight, document) == []
    [(code, message)] = await errors(tight, "{ catalog { metrics { name label } } }")
    assert code == "LIMIT_EXCEEDED" and "selects 4 fields" in message and "maximum of 3" in message


async def test_the_largest_documents_under_the_limits_validate_quickly() -> None:
    """Under the limits, graphql-core's pairwise check of same-named fields stays short (shared machine: generous)."""
    schema = build_schema(load_registry())
    repeated = "{ " + ("catalog { " + ("metrics { " + "name " * 10 + "} ") * 10 + "} ") * 9 + "}"
    fragments = (
        "{ "
        + " ".join(f"...F{i}" for i in range(10))
        + " } "
        + " ".join(f"fragment F{i} on Query {{ catalog {{ metrics {{ name }} }} }}" for i in range(10))
    )
    for document in (repeated, fragments):
        started = time.process_time()
        await errors(schema, document)
        assert time.process_time() - started < 2


async def test_graphql_cores_own_budget_is_a_limit_with_an_actionable_message() -> None:
    """Under our limits, graphql-core may still give up comparing same-named fields: LIMIT_EXCEEDED, saying why."""
    document = "{ " + ("catalog { " + ("metrics { " + "name " * 10 + "} ") * 10 + "} ") * 9 + "}"
    found = await errors(build_schema(load_registry()), document)
    assert found == [("LIMIT_EXCEEDED", found[0][1])] and "repeats fields of one name" in found[0][1]
