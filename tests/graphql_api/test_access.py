"""Policies: an attack suite per caller, on both backends, trying every path to a hidden metric, a hidden dimension
or a row outside the caller's scope. Numbers are compared with plain Python over the rows of
``tests.small_source`` (its verifications, errors and queries, each attributed to an agent by index)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from graphql_api.cli import main
from graphql_api.settings import AccessSettings
from metrics.errors import ConfigError
from metrics.policy import load_policies
from metrics.registry import load_registry
from tests.graphql_api.conftest import Api, open_api
from tests.small_source import AGENTS

SECRET = "a-shared-secret-of-at-least-32-bytes!"
POLICIES = """
policies:
  - group: support            # agents of the caller's types only, no rates, no actor
    metrics: {excludes: [verification_success_rate]}
    dimensions: {excludes: [actor]}
    rows:
      agent.type: {in: "{claims.agent_types}"}
  - groups: [auditors]
    metrics: {includes: [error_count]}
"""
AGENT_TYPE = dict(AGENTS)
VERIFICATION_AGENTS = [AGENTS[i % 3][0] if i % 4 else None for i in range(60)]
ERROR_AGENTS = [AGENTS[i % 3][0] for i in range(20)]


def _scoped(agents: list[str | None], types: set[str]) -> Counter[str | None]:
    """Rows per agent, of the agents whose type is in ``types`` (rows without an agent have no type: out of scope)."""
    return Counter(a for a in agents if a is not None and AGENT_TYPE[a] in types)


def token(role: str = "analyst", **claims: Any) -> dict[str, str]:
    payload = {"sub": "ada", "role": role, "exp": time.time() + 86_400, **claims}
    return {"authorization": "Bearer " + jwt.encode(payload, SECRET, algorithm="HS256")}


SUPPORT = token(groups=["support"], agent_types=["data", "support"])
AUDITOR = token(groups=["auditors"])
NOBODY = token(groups=["marketing"])
UNCLAIMED = token(groups=["support"])  # a support caller whose token lacks agent_types: no rows, so nothing
ADMIN = token(role="admin")


@pytest.fixture
async def api(warehouse_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    (tmp_path / "policies.yaml").write_text(POLICIES)
    registry = load_registry([tmp_path])
    settings = {"config_dirs": (tmp_path,), "access": AccessSettings(jwt_secret=SECRET)}
    async for opened in open_api(warehouse_url, registry, **settings):
        yield opened


def _codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def test_scoped_rows_match_an_independent_count(api: Api) -> None:
    types = {"data", "support"}
    body = await api("{ metrics { rows { verificationCount agent { name } } } }", **SUPPORT)
    expected = _scoped(VERIFICATION_AGENTS, types)
    assert {r["agent"]["name"]: r["verificationCount"] for r in body["data"]["metrics"]["rows"]} == expected
    total = await api("{ metrics { totalCount rows { verificationCount } } }", **SUPPORT)
    assert total["data"]["metrics"]["rows"] == [{"verificationCount": sum(expected.values())}]
    admin = await api("{ metrics { rows { verificationCount } } }", **ADMIN)
    assert admin["data"]["metrics"]["rows"] == [{"verificationCount": 60}]


async def test_drill_across_table_and_member_navigation_stay_in_scope(api: Api) -> None:
    types = {"data", "support"}
    across = await api("{ metrics { rows { agent { name } verificationCount errorCount } } }", **SUPPORT)
    got = {r["agent"]["name"]: (r["verificationCount"], r["errorCount"]) for r in across["data"]["metrics"]["rows"]}
    verifications, errors = _scoped(VERIFICATION_AGENTS, types), _scoped(ERROR_AGENTS, types)
    assert got == {a: (verifications[a], errors[a]) for a in verifications | errors}
    table = await api('{ table(metrics: ["errorCount"], dimensions: ["agent.name"]) { rows totalCount } }', **SUPPORT)
    assert {tuple(r) for r in table["data"]["table"]["rows"]} == {(a, n) for a, n in errors.items()}
    members = await api("{ agents { name metrics { errorCount } } }", **SUPPORT)
    assert {m["name"]: m["metrics"]["errorCount"] for m in members["data"]["agents"]} == {
        a: errors[a] for a in errors
    }  # the engineer agent is not even listed


async def test_a_user_filter_cannot_widen_the_scope(api: Api) -> None:
    query = '{ metrics(where: {or: [{agent: {type: {eq: "engineer"}}}, {agent: {type: {isNull: true}}}]}) '
    body = await api(query + "{ rows { verificationCount errorCount } } }", **SUPPORT)
    assert body["data"]["metrics"]["rows"] == [{"verificationCount": 0, "errorCount": 0}]


HIDDEN_PATHS = {
    "rows": "{ metrics { rows { verificationSuccessRate } } }",
    "alias": "{ metrics { rows { rate: verificationSuccessRate } } }",
    "fragment": "{ metrics { rows { ...F } } } fragment F on MetricRow { verificationSuccessRate }",
    "inline-fragment": "{ metrics { rows { ... on MetricRow { verificationCount verificationSuccessRate } } } }",
    "having": "{ metrics(having: {verificationSuccessRate: {gt: 0}}) { rows { verificationCount } } }",
    "order-by": '{ metrics(orderBy: [{field: "verificationSuccessRate"}]) { rows { verificationCount } } }',
    "where-hidden-dimension": '{ metrics(where: {actor: {team: {eq: "x"}}}) { rows { verificationCount } } }',
    "group-by-hidden-dimension": "{ metrics { rows { verificationCount actor { team } } } }",
    "table-metric": '{ table(metrics: ["verification_success_rate"]) { rows } }',
    "table-dimension": '{ table(metrics: ["verificationCount"], dimensions: ["actor.team"]) { rows } }',
    "explain": '{ explain(metrics: ["verificationSuccessRate"]) { sql } }',
    "member-metrics": "{ agents { metrics { verificationSuccessRate } } }",
    "hidden-navigation": "{ actors { team } }",
    "fact-without-the-row-filter": "{ metrics { rows { missionCount } } }",
}


@pytest.mark.parametrize("query", HIDDEN_PATHS.values(), ids=HIDDEN_PATHS.keys())
async def test_every_path_to_a_hidden_name_is_forbidden(api: Api, query: str) -> None:
    body = await api(query, **SUPPORT)
    assert body.get("data") in (None, {}) or all(v is None for v in body["data"].values()), body
    assert "FORBIDDEN" in _codes(body), body
    text = str(body["errors"])
    for hidden in ("verificationSuccessRate", "verification_success_rate", "actor", "missionCount"):
        assert hidden not in text or hidden in query, text  # names only what the caller itself wrote


async def test_hidden_and_unknown_names_are_refused_alike(api: Api) -> None:
    hidden = await api('{ table(metrics: ["verification_success_rate"]) { rows } }', **SUPPORT)
    unknown = await api('{ table(metrics: ["verification_success_rat"]) { rows } }', **SUPPORT)
    shapes = [body["errors"][0]["message"].split("'")[::2] for body in (hidden, unknown)]
    assert _codes(hidden) == _codes(unknown) == ["FORBIDDEN"] and shapes[0] == shapes[1]


async def test_introspection_and_catalog_show_only_the_visible_set(api: Api) -> None:
    query = '{ __type(name: "MetricRow") { fields { name } } }'
    fields = {f["name"] for f in (await api(query, **SUPPORT))["data"]["__type"]["fields"]}
    assert {"verificationCount", "errorCount", "agent", "time"} <= fields
    assert not fields & {"verificationSuccessRate", "actor", "missionCount"}
    catalog = (await api("{ catalog { metrics { name } dimensions { name } } }", **SUPPORT))["data"]["catalog"]
    names = {m["name"] for m in catalog["metrics"]}
    assert "error_count" in names and not names & {"verification_success_rate", "mission_count"}
    assert "actor" not in {d["name"] for d in catalog["dimensions"]}
    admin_fields = {f["name"] for f in (await api(query, **ADMIN))["data"]["__type"]["fields"]}
    assert {"verificationSuccessRate", "actor", "missionCount"} <= admin_fields


async def test_explain_shows_the_policy_predicate(api: Api) -> None:
    body = await api('{ explain(metrics: ["errorCount"]) { sql plan } }', **SUPPORT)
    assert "agent.type in ('data', 'support')" in body["data"]["explain"]["plan"]
    assert "'support'" in body["data"]["explain"]["sql"]


async def test_union_of_groups_and_callers_in_no_group(api: Api) -> None:
    both = token(groups=["support", "auditors"], agent_types=["engineer"])
    body = await api("{ metrics { rows { errorCount } } }", **both)
    assert body["data"]["metrics"]["rows"] == [{"errorCount": 20}]  # the auditors' policy has no row filter
    only_errors = await api("{ metrics { rows { verificationCount } } }", **AUDITOR)
    assert _codes(only_errors) == ["FORBIDDEN"]
    for caller in (NOBODY, UNCLAIMED):
        nothing = await api("{ metrics { rows { errorCount } } }", **caller)
        assert _codes(nothing) == ["FORBIDDEN"]
        catalog = await api("{ catalog { metrics { name } } }", **caller)
        assert catalog["data"]["catalog"]["metrics"] == []
    anonymous = await api("{ __schema { types { name } } }")
    assert _codes(anonymous) == ["UNAUTHORIZED"] and anonymous["data"] is None


def test_policy_files_are_validated_with_file_line_and_suggestions(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "policies:\n"
        "  - group: a\n"
        "    metrics: {excludes: [eror_count]}\n"
        "    rows:\n"
        "      agent.kind: {eq: x}\n"
        "  - grop: b\n"
        "    rows: {agent.type: {equals: x}}\n"
    )
    with pytest.raises(ConfigError) as error:
        load_policies([tmp_path], load_registry())
    found = [(i.code, i.line, i.message) for i in error.value.issues]
    file = str(tmp_path / "p.yaml")
    assert all(i.file == file for i in error.value.issues)
    assert ("unknown_metric", 3) in [(c, ln) for c, ln, _ in found] and "did you mean 'error_count'" in found[0][2]
    assert ("unknown_dimension", 5) in [(c, ln) for c, ln, _ in found]
    assert {("unknown_key", 6), ("missing_key", 6), ("invalid_value", 7)} <= {(c, ln) for c, ln, _ in found}


async def test_a_claim_of_the_wrong_shape_fails_closed(api: Api) -> None:
    """``agent_types`` holding a number, not names: the policy's filter cannot hold, so nothing is answered."""
    odd = token(groups=["support"], agent_types=[7])
    body = await api("{ metrics { rows { errorCount } } }", **odd)
    assert body["data"] is None and _codes(body) == ["INVALID_FILTER"]


def test_validate_reports_policy_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yaml").write_text("policies:\n  - group: a\n    metrics: {includes: [eror_count]}\n")
    assert main(["validate", "--config", str(tmp_path)]) == 2
    assert f"{tmp_path / 'p.yaml'}:3: error: policy metrics.includes: unknown metric 'eror_count'" in (
        capsys.readouterr().err
    )
