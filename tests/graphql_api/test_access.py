"""Policies: an attack suite per caller, on both backends, trying every path to a hidden metric, a hidden dimension
or a row outside the caller's scope. Numbers are compared with plain Python over the rows of
``tests.small_source`` (its verifications, errors and queries, each attributed to an agent by index)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from graphql_api.cli import main
from metrics.errors import ConfigError
from metrics.policy import load_policies
from metrics.registry import load_registry
from tests.graphql_api.conftest import Api, codes, token
from tests.small_source import AGENTS
from tests.warehouse.sourcedb import T0

AGENT_TYPE = dict(AGENTS)
VERIFICATION_AGENTS = [AGENTS[i % 3][0] if i % 4 else None for i in range(60)]
ERROR_AGENTS = [AGENTS[i % 3][0] for i in range(20)]


def _scoped(agents: list[str | None], types: set[str]) -> Counter[str | None]:
    """Rows per agent, of the agents whose type is in ``types`` (rows without an agent have no type: out of scope)."""
    return Counter(a for a in agents if a is not None and AGENT_TYPE[a] in types)


SUPPORT = token(groups=["support"], agent_types=["data", "support"])
AUDITOR = token(groups=["auditors"])
NOBODY = token(groups=["marketing"])
UNCLAIMED = token(groups=["support"])  # a support caller whose token lacks agent_types: no rows, so nothing
ADMIN = token(role="admin")


async def test_scoped_rows_match_an_independent_count(scoped_api: Api) -> None:
    types = {"data", "support"}
    body = await scoped_api("{ metrics { rows { verificationCount agent { name } } } }", **SUPPORT)
    expected = _scoped(VERIFICATION_AGENTS, types)
    assert {r["agent"]["name"]: r["verificationCount"] for r in body["data"]["metrics"]["rows"]} == expected
    total = await scoped_api("{ metrics { totalCount rows { verificationCount } } }", **SUPPORT)
    assert total["data"]["metrics"]["rows"] == [{"verificationCount": sum(expected.values())}]
    admin = await scoped_api("{ metrics { rows { verificationCount } } }", **ADMIN)
    assert admin["data"]["metrics"]["rows"] == [{"verificationCount": 60}]


async def test_drill_across_table_and_member_navigation_stay_in_scope(scoped_api: Api) -> None:
    types = {"data", "support"}
    across = await scoped_api("{ metrics { rows { agent { name } verificationCount errorCount } } }", **SUPPORT)
    got = {r["agent"]["name"]: (r["verificationCount"], r["errorCount"]) for r in across["data"]["metrics"]["rows"]}
    verifications, errors = _scoped(VERIFICATION_AGENTS, types), _scoped(ERROR_AGENTS, types)
    assert got == {a: (verifications[a], errors[a]) for a in verifications | errors}
    table_query = '{ table(metrics: ["errorCount"], dimensions: ["agent.name"]) { rows totalCount } }'
    table = await scoped_api(table_query, **SUPPORT)
    assert {tuple(r) for r in table["data"]["table"]["rows"]} == {(a, n) for a, n in errors.items()}
    members = await scoped_api("{ agents { name metrics { errorCount } } }", **SUPPORT)
    assert {m["name"]: m["metrics"]["errorCount"] for m in members["data"]["agents"]} == {
        a: errors[a] for a in errors
    }  # the engineer agent is not even listed


async def test_a_user_filter_cannot_widen_the_scope(scoped_api: Api) -> None:
    query = '{ metrics(where: {or: [{agent: {type: {eq: "engineer"}}}, {agent: {type: {isNull: true}}}]}) '
    body = await scoped_api(query + "{ rows { verificationCount errorCount } } }", **SUPPORT)
    assert body["data"]["metrics"]["rows"] == [{"verificationCount": 0, "errorCount": 0}]


async def test_ad_hoc_windows_of_an_allowed_metric_read_only_rows_in_scope(scoped_api: Api) -> None:
    """``window:`` and ``compare:`` on a metric the policy allows: every bucket a window or an earlier bucket
    reads is filtered by the caller's rows too (verification i: T0 + 7 h * i, agent by index, none when 4 | i)."""
    query = """{ metrics(where: {time: {from: "2025-11-03T00:00:00Z", to: "2025-11-16T00:00:00Z"}}) {
        rows { day: time(grain: DAY) verificationCount last3: verificationCount(window: {days: 3})
               before: verificationCount(compare: PREVIOUS_PERIOD) } } }"""
    body = await scoped_api(query, **SUPPORT)
    assert "errors" not in body, body
    per_day: Counter[int] = Counter()
    for i, agent in enumerate(VERIFICATION_AGENTS):
        if agent is not None and AGENT_TYPE[agent] in {"data", "support"}:
            per_day[(T0 + timedelta(hours=7 * i) - T0.replace(hour=0)).days] += 1
    rows = body["data"]["metrics"]["rows"]
    days = [(T0.replace(hour=0) + timedelta(days=d)).date().isoformat() for d in range(13)]
    got = {row["day"][:10]: (row["verificationCount"], row["last3"], row["before"]) for row in rows}
    expected = {
        day: (per_day[d], per_day[d] + per_day[d - 1] + per_day[d - 2], per_day[d - 1])
        for d, day in enumerate(days)
        if per_day[d]
    }
    assert got == expected
    admin = await scoped_api(query, **ADMIN)
    assert sum(row["verificationCount"] for row in admin["data"]["metrics"]["rows"]) > sum(per_day.values())


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
    "window-of-a-hidden-metric": "{ metrics { rows { time(grain: DAY) verificationSuccessRate(window: {days: 2}) } } }",
    "compare-of-a-hidden-metric": "{ metrics { rows { time(grain: DAY) verificationSuccessRate(compare: DAY_AGO) } } }",
    "fact-without-the-row-filter": "{ metrics { rows { missionCount } } }",
}


@pytest.mark.parametrize("query", HIDDEN_PATHS.values(), ids=HIDDEN_PATHS.keys())
async def test_every_path_to_a_hidden_name_is_forbidden(scoped_api: Api, query: str) -> None:
    body = await scoped_api(query, **SUPPORT)
    assert body.get("data") in (None, {}) or all(v is None for v in body["data"].values()), body
    assert "FORBIDDEN" in codes(body), body
    text = str(body["errors"])
    for hidden in ("verificationSuccessRate", "verification_success_rate", "actor", "missionCount"):
        assert hidden not in text or hidden in query, text  # names only what the caller itself wrote


async def test_hidden_and_unknown_names_are_refused_alike(scoped_api: Api) -> None:
    hidden = await scoped_api('{ table(metrics: ["verification_success_rate"]) { rows } }', **SUPPORT)
    unknown = await scoped_api('{ table(metrics: ["verification_success_rat"]) { rows } }', **SUPPORT)
    shapes = [body["errors"][0]["message"].split("'")[::2] for body in (hidden, unknown)]
    assert codes(hidden) == codes(unknown) == ["FORBIDDEN"] and shapes[0] == shapes[1]


async def test_introspection_and_catalog_show_only_the_visible_set(scoped_api: Api) -> None:
    query = '{ __type(name: "MetricRow") { fields { name } } }'
    fields = {f["name"] for f in (await scoped_api(query, **SUPPORT))["data"]["__type"]["fields"]}
    assert {"verificationCount", "errorCount", "agent", "time"} <= fields
    assert not fields & {"verificationSuccessRate", "actor", "missionCount"}
    catalog = (await scoped_api("{ catalog { metrics { name } dimensions { name } } }", **SUPPORT))["data"]["catalog"]
    names = {m["name"] for m in catalog["metrics"]}
    assert "error_count" in names and not names & {"verification_success_rate", "mission_count"}
    assert "actor" not in {d["name"] for d in catalog["dimensions"]}
    admin_fields = {f["name"] for f in (await scoped_api(query, **ADMIN))["data"]["__type"]["fields"]}
    assert {"verificationSuccessRate", "actor", "missionCount"} <= admin_fields


async def test_explain_shows_the_policy_predicate(scoped_api: Api) -> None:
    body = await scoped_api('{ explain(metrics: ["errorCount"]) { sql plan } }', **SUPPORT)
    assert "agent.type in ('data', 'support')" in body["data"]["explain"]["plan"]
    assert "'support'" in body["data"]["explain"]["sql"]


async def test_union_of_groups_and_callers_in_no_group(scoped_api: Api) -> None:
    both = token(groups=["support", "auditors"], agent_types=["engineer"])
    body = await scoped_api("{ metrics { rows { errorCount } } }", **both)
    assert body["data"]["metrics"]["rows"] == [{"errorCount": 20}]  # the auditors' policy has no row filter
    only_errors = await scoped_api("{ metrics { rows { verificationCount } } }", **AUDITOR)
    assert codes(only_errors) == ["FORBIDDEN"]
    for caller in (NOBODY, UNCLAIMED):
        nothing = await scoped_api("{ metrics { rows { errorCount } } }", **caller)
        assert codes(nothing) == ["FORBIDDEN"]
        catalog = await scoped_api("{ catalog { metrics { name } } }", **caller)
        assert catalog["data"]["catalog"]["metrics"] == []
    anonymous = await scoped_api("{ __schema { types { name } } }")
    assert codes(anonymous) == ["UNAUTHORIZED"] and anonymous["data"] is None


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


async def test_a_claim_of_the_wrong_shape_fails_closed(scoped_api: Api) -> None:
    """``agent_types`` holding a number, not names: the policy's filter cannot hold, so nothing is answered."""
    odd = token(groups=["support"], agent_types=[7])
    body = await scoped_api("{ metrics { rows { errorCount } } }", **odd)
    assert body["data"] is None and codes(body) == ["INVALID_FILTER"]


def test_validate_reports_policy_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yaml").write_text("policies:\n  - group: a\n    metrics: {includes: [eror_count]}\n")
    assert main(["validate", "--config", str(tmp_path)]) == 2
    assert f"{tmp_path / 'p.yaml'}:3: error: policy metrics.includes: unknown metric 'eror_count'" in (
        capsys.readouterr().err
    )
