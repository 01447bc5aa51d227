"""The fast path for rows answers byte for byte what graphql-core's ordinary execution answers.

Random selections under ``rows`` (aliases, named and inline fragments,
nested dimension objects, ``__typename``, ``@include``/``@skip``, variables,
null members and null metric values) run through the schema twice: with
``RowsExecutionContext`` and with Strawberry's own execution context.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from graphql import GraphQLBoolean, GraphQLFloat, GraphQLInt, GraphQLNonNull, GraphQLString
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql_api.auth import ANONYMOUS_ADMIN
from graphql_api.context import Context
from graphql_api.execution import RowsExecutionContext, _leaf_column, _Unsupported
from graphql_api.schema import build_schema
from graphql_api.settings import Settings
from metrics.engine import MetricsEngine
from metrics.registry import load_registry

REGISTRY = load_registry()
METRICS = ["verificationCount", "verificationSuccessRate", "avgVerificationDurationMs", "p95VerificationDurationMs"]
OBJECTS = {"tier": ["name", "level", "id"], "agent": ["name", "type", "slaTargetSeconds"], "component": ["kernel"]}
LEAVES = ["time(grain: DAY)", "time(grain: HOUR)", "time(grain: $grain)", "dayOfWeek", "hourOfDay", "isWeekend"]
names = st.sampled_from(["a", "b", "c", "x1", "n"])


def _aliased(alias: str | None, field: str) -> str:
    """An alias that names its field too, so two fields never share a response key (a validation error)."""
    if alias is None and not field.startswith("time"):
        return field
    return f"{alias or 't'}_{re.sub('[^A-Za-z0-9]', '', field)}: {field}"


@st.composite
def leaf(draw: st.DrawFn, fields: list[str]) -> str:
    field = draw(st.sampled_from(fields))
    directive = draw(st.sampled_from(["", "", "@include(if: true)", "@skip(if: false)", "@include(if: $shown)"]))
    return f"{_aliased(draw(st.none() | names), field)} {directive}"


@st.composite
def member(draw: st.DrawFn) -> str:
    dimension = draw(st.sampled_from(sorted(OBJECTS)))
    inner = draw(st.lists(leaf(OBJECTS[dimension] + ["__typename"]), min_size=1, max_size=3))
    return f"{_aliased(draw(st.none() | names), dimension)} {{ {' '.join(inner)} }}"


@st.composite
def selection(draw: st.DrawFn) -> tuple[str, str]:
    """The fields under rows, and the named fragments they spread."""
    parts = [_aliased(draw(st.none() | names), draw(st.sampled_from(METRICS)))]  # a metric is always computed
    parts += draw(st.lists(st.one_of(leaf(METRICS + LEAVES + ["__typename"]), member()), max_size=4))
    fragments = []
    if draw(st.booleans()):
        split = draw(st.integers(0, len(parts) - 1))
        kind = draw(st.sampled_from(["named", "inline", "bare"]))
        moved = " ".join(parts[split:])
        if kind == "named":
            fragments.append(f"fragment F on MetricRow {{ {moved} }}")
            parts[split:] = ["...F"]
        else:
            parts[split:] = [f"... {'on MetricRow ' if kind == 'inline' else ''}{{ {moved} }}"]
    return " ".join(parts), " ".join(fragments)


@pytest.fixture
async def contexts(warehouse_url: str) -> AsyncIterator[tuple[MetricsEngine, Settings, Any, Any]]:
    settings_ = Settings(warehouse_url=warehouse_url, max_aliases=1000, max_depth=20)
    engine = await MetricsEngine.connect(warehouse_url, REGISTRY)
    fast, ordinary = build_schema(REGISTRY, settings_), build_schema(REGISTRY, settings_)
    ordinary.execution_context_class = StrawberryGraphQLCoreExecutionContext
    try:
        yield engine, settings_, fast, ordinary
    finally:
        await engine.close()


async def _run(schema: Any, engine: MetricsEngine, settings_: Settings, query: str, variables: dict[str, Any]) -> bytes:
    result = await schema.execute(
        query, variable_values=variables, context_value=Context(engine, settings_, ANONYMOUS_ADMIN)
    )
    errors = [(e.message, e.path) for e in result.errors or ()]
    return orjson.dumps({"data": result.data, "errors": errors})


def test_the_fast_path_is_the_one_the_schema_uses() -> None:
    assert build_schema(REGISTRY).execution_context_class is RowsExecutionContext


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chosen=selection(), shown=st.booleans(), grain=st.sampled_from(["DAY", "WEEK"]), paged=st.booleans())
async def test_random_selections_answer_as_ordinary_execution(
    contexts: Any, chosen: tuple[str, str], shown: bool, grain: str, paged: bool
) -> None:
    engine, settings_, fast, ordinary = contexts
    fields, fragments = chosen
    arguments = "(limit: 3, offset: 1)" if paged else ""
    body = f"{{ metrics{arguments} {{ rows {{ {fields} }} }} }} {fragments}"
    declared = {"shown": ("Boolean!", shown), "grain": ("TimeGrain!", grain)}
    used = {name: value for name, value in declared.items() if f"${name}" in body}
    signature = ", ".join(f"${name}: {declared[name][0]}" for name in used)
    query = f"query ({signature}) {body}" if used else body
    variables = {name: value for name, (_, value) in used.items()}
    answer = await _run(fast, engine, settings_, query, variables)
    assert answer == await _run(ordinary, engine, settings_, query, variables), query
    assert b'"errors":[]' in answer, answer


async def test_table_rows_answer_as_ordinary_execution(contexts: Any) -> None:
    engine, settings_, fast, ordinary = contexts
    query = (
        '{ table(metrics: ["verificationCount", "avgVerificationDurationMs"], dimensions: ["time.day", "agent.name"]) '
        "{ rows } }"
    )
    answer = await _run(fast, engine, settings_, query, {})
    assert answer == await _run(ordinary, engine, settings_, query, {}) and b'"rows":[[' in answer


@pytest.mark.parametrize(
    ("leaf", "values"),
    [(GraphQLInt, [1, 2**31]), (GraphQLFloat, [1.0, float("nan")]), (GraphQLString, [["a"]]), (GraphQLBoolean, ["x"])],
)
def test_a_column_a_scalar_would_reject_falls_back_to_ordinary_execution(leaf: Any, values: list[Any]) -> None:
    with pytest.raises(_Unsupported):
        _leaf_column(leaf, values)


def test_clean_columns_pass_unchanged_and_others_are_coerced_as_graphql_would() -> None:
    assert _leaf_column(GraphQLInt, [1, None, -(2**31)]) == [1, None, -(2**31)]
    assert _leaf_column(GraphQLFloat, [2, None]) == [2.0, None]  # coerced as graphql-core coerces
    assert _leaf_column(GraphQLString, [1]) == ["1"] and _leaf_column(GraphQLBoolean, [0]) == [False]
    with pytest.raises(_Unsupported):
        _leaf_column(GraphQLNonNull(GraphQLInt), [1, None])
