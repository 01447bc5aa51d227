"""Scopes in the compiler, without a database: the mandatory predicate in the plan and bound SQL, hidden names
refused alike, k-anonymity as a having on distinct users that runs before rows are counted, and ad hoc windows:
under the scope's rows for scoped callers, refused over users for research."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from metrics.compiler import DimensionRef, MetricRequest, compile_query, suppressed_rows
from metrics.compiler.adhoc import adhoc_metric
from metrics.errors import Forbidden
from metrics.model import TimeGrain, Window, WindowKind
from metrics.policy import Grant, Scope, load_policies, research_scope
from metrics.registry import TIME, Registry, config_directories, load_registry

POLICIES = """
policies:
  - group: support
    metrics: {excludes: [verification_success_rate]}
    dimensions: {excludes: [actor]}
    rows: {agent.type: {in: "{claims.agent_types}"}}
  - group: everything
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Registry, Scope]:
    directory: Path = tmp_path_factory.mktemp("policies")
    (directory / "p.yaml").write_text(POLICIES)
    registry = load_registry([directory])
    policies = load_policies(config_directories([directory]), registry)
    scope = policies.scope(registry, ["support"], {"agent_types": ["data"]})
    assert scope is not None
    return registry, scope


def _sql(statement: sa.Select) -> str:
    return str(statement.compile(dialect=postgresql.dialect()))


def test_the_row_filter_is_in_the_plan_and_bound_in_the_sql(setup: tuple[Registry, Scope]) -> None:
    registry, scope = setup
    request = MetricRequest(("error_count", "verification_count"), (DimensionRef.parse("tier.name"),), scope=scope)
    compiled = compile_query(request, registry)
    assert "where agent.type in ('data',)" in str(compiled.plan)
    sql = _sql(compiled.statement)
    assert sql.count("agent.agent_type IN (__[POSTCOMPILE_") == 2  # each fact of the drill-across, as a parameter
    unscoped = compile_query(replace(request, scope=None), registry)
    assert "agent_type" not in _sql(unscoped.statement)


@pytest.mark.parametrize(
    "request_",
    [
        MetricRequest(("verification_success_rate",)),
        MetricRequest(("verification_count",), (DimensionRef.parse("actor.team"),)),
        MetricRequest(("mission_count",)),  # missions have no agent: the row filter cannot apply
    ],
    ids=["hidden-metric", "hidden-dimension", "fact-without-the-filtered-dimension"],
)
def test_hidden_names_are_forbidden(setup: tuple[Registry, Scope], request_: MetricRequest) -> None:
    registry, scope = setup
    with pytest.raises(Forbidden, match="is not available to you"):
        compile_query(replace(request_, scope=scope), registry)


def test_a_union_without_row_filter_is_unrestricted(setup: tuple[Registry, Scope], tmp_path: Path) -> None:
    registry, _ = setup
    (tmp_path / "p.yaml").write_text(POLICIES)
    scope = load_policies(config_directories([tmp_path]), registry).scope(
        registry, ["support", "everything"], {"agent_types": ["data"]}
    )
    assert scope is not None
    compiled = compile_query(MetricRequest(("verification_success_rate",), scope=scope), registry)
    assert "agent_type" not in _sql(compiled.statement)


def test_k_anonymity_is_a_having_on_distinct_users_before_the_row_count(setup: tuple[Registry, Scope]) -> None:
    registry, _ = setup
    scope = research_scope(registry, None, 7)
    request = MetricRequest(("query_count",), (DimensionRef.parse("agent.name"),), scope=scope)
    sql = _sql(compile_query(request, registry).statement)
    assert "count(DISTINCT fact_queries.user_key) AS _k_users_queries" in sql
    assert sql.index("WHERE queries._k_users_queries >=") < sql.index("ORDER BY")
    counting = suppressed_rows(request, registry)
    assert counting is not None
    assert "WHERE coalesce(anon_1._k_users_queries, %(coalesce_1)s::INTEGER) < %(coalesce_2)s::INTEGER" in _sql(
        counting
    )
    assert counting.compile(dialect=postgresql.dialect()).params["coalesce_2"] == 7
    assert suppressed_rows(replace(request, metrics=("verification_count",)), registry) is None  # no users there


@pytest.mark.parametrize(
    "metrics",
    [("unique_users_28d",), ("query_count", "unique_users_28d")],  # windows only; a plain metric sharing a window
    ids=["window", "plain-beside-a-window"],
)
def test_k_anonymity_counts_the_users_of_facts_read_through_windows(
    setup: tuple[Registry, Scope], metrics: tuple[str, ...]
) -> None:
    """Research may not read windows over users (``metrics.policy.across_buckets``); a k-anonymous scope that
    admits one still counts the users of the facts the window reads."""
    registry, _ = setup
    admitting = Grant("all", frozenset(registry.metrics), frozenset((TIME, *registry.dimensions)), None)
    request = MetricRequest(metrics, (DimensionRef.parse("time.day"),), scope=Scope((admitting,), 7))
    compiled = compile_query(request, registry)
    assert "aggregate queries: _k_users_queries" in str(compiled.plan)
    assert "having _k_users_queries gte 7" in str(compiled.plan)
    assert "count(DISTINCT fact_queries.user_key) AS _k_users_queries" in _sql(compiled.statement)


def test_research_cannot_name_the_user_or_a_sensitive_dimension(setup: tuple[Registry, Scope]) -> None:
    registry, _ = setup
    scope = research_scope(registry, None, 5)
    for dimension in ("user", "actor.team"):
        with pytest.raises(Forbidden):
            compile_query(MetricRequest(("query_count",), (DimensionRef.parse(dimension),), scope=scope), registry)


def _windowed(registry: Registry, base: str, scope: Scope) -> MetricRequest:
    derived = adhoc_metric(registry, base, Window(WindowKind.TRAILING, 7, TimeGrain.DAY))
    time = DimensionRef("time", grain=TimeGrain.DAY)
    return MetricRequest((base, derived.name), (time,), scope=scope, derived=(derived,))


def test_an_ad_hoc_window_of_an_allowed_metric_reads_only_rows_in_scope(setup: tuple[Registry, Scope]) -> None:
    registry, scope = setup
    compiled = compile_query(_windowed(registry, "verification_count", scope), registry)
    assert "where agent.type in ('data',)" in str(compiled.plan)
    assert "verification_count__trailing_7_day" in str(compiled.plan)
    sql = _sql(compiled.statement)
    # Every scan of the fact (the bucket's rows and the window's, shared or not) carries the scope's row filter.
    assert sql.count("FROM fact_verifications") == sql.count("agent.agent_type IN (__[POSTCOMPILE_") >= 1
    with pytest.raises(Forbidden, match="is not available to you"):
        compile_query(_windowed(registry, "verification_success_rate", scope), registry)


def test_research_reads_no_window_or_earlier_bucket_over_users(setup: tuple[Registry, Scope]) -> None:
    registry, _ = setup
    scope = research_scope(registry, None, 5)
    with pytest.raises(Forbidden, match="k-anonymity leaves out"):
        compile_query(_windowed(registry, "query_count", scope), registry)
    assert "unique_users_28d" not in scope.metrics and "verification_count_7d" in scope.metrics
    compiled = compile_query(_windowed(registry, "verification_count", scope), registry)  # no users: no k
    assert "_k_users" not in _sql(compiled.statement)
