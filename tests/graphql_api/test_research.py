"""The research role on both backends: no raw user id, no user key or sensitive dimension to slice by, and no
released row aggregating fewer than k distinct users, checked against plain Python over the source rows of
``tests.small_source`` (query i: created T0 + 5 h * i, agent AGENTS[i % 3], user u{i % 5})."""

from __future__ import annotations

import itertools
import json
import re
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from tests.graphql_api.conftest import RESEARCH, Api, codes, open_access_api, token
from tests.small_source import AGENTS
from tests.warehouse.sourcedb import T0
from warehouse.audit import AuditLog

QUERIES = [
    {
        "time": T0 + timedelta(hours=5 * i),
        "agent": AGENTS[i % 3],
        "user": f"u{i % 5}",
    }
    for i in range(30)
]
FIELDS = {
    "time(grain: DAY)": lambda q: {"time": q["time"].strftime("%Y-%m-%dT00:00:00+00:00")},
    "hourOfDay": lambda q: {"hourOfDay": q["time"].hour},
    "dayOfWeek": lambda q: {"dayOfWeek": q["time"].isoweekday()},
    "agent { name }": lambda q: {"agent": {"name": q["agent"][0]}},
    "agent { type }": lambda q: {"agent": {"type": q["agent"][1]}},
}
RAW_USER_ID = re.compile(r"\bu[0-4]\b")


def _key(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True)


def _groups(fields: tuple[str, ...]) -> dict[str, tuple[int, set[str]]]:
    """Each group the fields make, as the row the API returns (with its queryCount), and its distinct users; computed
    from the source rows."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for query in QUERIES:
        values: dict[str, Any] = {}
        for field in fields:
            for name, value in FIELDS[field](query).items():
                values[name] = {**values.get(name, {}), **value} if isinstance(value, dict) else value
        groups[_key(values)].append(query)
    return {
        _key({**json.loads(key), "queryCount": len(rows)}): (len(rows), {q["user"] for q in rows})
        for key, rows in groups.items()
    }


@pytest.fixture
async def api(warehouse_url: str) -> AsyncIterator[Api]:
    async for opened in open_access_api(warehouse_url, k=3):
        yield opened


def _normalised(row: dict[str, Any]) -> str:
    if "time" in row:
        row = {**row, "time": row["time"].replace("Z", "+00:00")}
    return _key(row)


@pytest.mark.parametrize("k", [1, 3, 5])
async def test_no_released_row_has_fewer_than_k_users(warehouse_url: str, k: int) -> None:
    """Every combination of the slicing fields: released rows and suppressed counts match the source."""
    async for api in open_access_api(warehouse_url, k=k):
        for size in range(len(FIELDS) + 1):
            for fields in itertools.combinations(FIELDS, size):
                query = f"{{ metrics {{ totalCount rows {{ queryCount {' '.join(fields)} }} }} }}"
                body = await api(query, **RESEARCH)
                assert "errors" not in body, (query, body)
                expected = _groups(fields)
                released = {row for row, (_, users) in expected.items() if len(users) >= k}
                rows = body["data"]["metrics"]["rows"]
                assert {_normalised(row) for row in rows} == released, query
                assert body["data"]["metrics"]["totalCount"] == len(released)
                assert body["extensions"]["suppressedRows"] == len(expected) - len(released), query
                assert not RAW_USER_ID.search(json.dumps(body))


async def test_counts_of_released_rows_are_exact(api: Api) -> None:
    body = await api("{ metrics { rows { agent { name } queryCount uniqueUsers } } }", **RESEARCH)
    expected = {a: (10, 5) for a, _ in AGENTS}
    got = {r["agent"]["name"]: (r["queryCount"], r["uniqueUsers"]) for r in body["data"]["metrics"]["rows"]}
    assert got == expected and body["extensions"]["suppressedRows"] == 0


async def test_facts_without_users_are_not_suppressed(api: Api) -> None:
    body = await api("{ metrics { rows { agent { name } verificationCount } } }", **RESEARCH)
    assert len(body["data"]["metrics"]["rows"]) == 4  # three agents and the rows without one
    assert body["extensions"]["suppressedRows"] == 0


RESEARCH_REFUSED = {
    "group-by-user": "{ metrics { rows { queryCount user } } }",
    "filter-on-user": '{ metrics(where: {user: {eq: "x"}}) { rows { queryCount } } }',
    "table-user": '{ table(metrics: ["query_count"], dimensions: ["user"]) { rows } }',
    "sensitive-dimension": "{ metrics { rows { verificationCount actor { displayName } } } }",
    "sensitive-navigation": "{ actors { id } }",
    "explain": '{ explain(metrics: ["queryCount"]) { sql } }',
    "window-over-users": "{ metrics { rows { time(grain: DAY) queryCount(window: {days: 2}) } } }",
    "compare-over-users": "{ metrics { rows { time(grain: DAY) queryCount(compare: PREVIOUS_PERIOD) } } }",
    "time-relative-metric-over-users": "{ metrics { rows { time(grain: DAY) uniqueUsers28d } } }",
    "table-time-relative-over-users": '{ table(metrics: ["unique_users_28d"]) { rows } }',
}


@pytest.mark.parametrize("query", RESEARCH_REFUSED.values(), ids=RESEARCH_REFUSED.keys())
async def test_research_cannot_isolate_people(api: Api, query: str) -> None:
    body = await api(query, **RESEARCH)
    assert codes(body) == ["FORBIDDEN"], body


async def test_research_schema_hides_user_and_sensitive_dimensions(api: Api) -> None:
    fields = {
        f["name"]
        for f in (await api('{ __type(name: "MetricRow") { fields { name } } }', **RESEARCH))["data"]["__type"][
            "fields"
        ]
    }
    assert "queryCount" in fields and not fields & {"user", "actor"}
    analyst = await api('{ __type(name: "MetricRow") { fields { name } } }', **token())
    assert {"user", "actor"} <= {f["name"] for f in analyst["data"]["__type"]["fields"]}


async def test_the_audit_entry_records_suppressed_rows(warehouse_url: str) -> None:
    async for api in open_access_api(warehouse_url, k=5):
        body = await api("query Daily { metrics { rows { time(grain: DAY) queryCount } } }", **RESEARCH)
    log = AuditLog(warehouse_url)
    [entry] = [e for e in log.tail(1)]
    log.close()
    assert (entry["operation"], entry["role"]) == ("Daily", "research")
    assert entry["suppressed_rows"] == body["extensions"]["suppressedRows"] > 0
    assert entry["rows_returned"] == len(body["data"]["metrics"]["rows"])


async def test_a_suppressed_bucket_does_not_leak_through_a_window_or_an_earlier_bucket(warehouse_url: str) -> None:
    """With k = 5 the first day (queries 0-2, users u0-u2) is left out. Its count would be the next day's previous
    period value, and a two-day total minus the next day's count: both forms are refused over users, while a
    fact without users keeps them (no k applies there)."""
    async for api in open_access_api(warehouse_url, k=5):
        daily = await api("{ metrics { rows { time(grain: DAY) queryCount } } }", **RESEARCH)
        days = {row["time"][:10] for row in daily["data"]["metrics"]["rows"]}
        first = T0.date().isoformat()
        assert first not in days and daily["extensions"]["suppressedRows"] >= 1
        for field in (
            "before: queryCount(compare: PREVIOUS_PERIOD)",
            "two: queryCount(window: {days: 2})",
            "uniqueUsers28d",
        ):
            body = await api(f"{{ metrics {{ rows {{ time(grain: DAY) queryCount {field} }} }} }}", **RESEARCH)
            assert body["data"] is None and codes(body) == ["FORBIDDEN"], body
        without_users = "{ metrics { rows { time(grain: DAY) verificationCount(compare: PREVIOUS_PERIOD) } } }"
        body = await api(without_users, **RESEARCH)
        assert "errors" not in body and body["extensions"]["suppressedRows"] == 0
        assert body["data"]["metrics"]["rows"][0]["verificationCount"] == 0  # nothing before the first day


@pytest.mark.parametrize("k", [3, 4])
async def test_member_navigation_counts_the_members_it_leaves_out(warehouse_url: str, k: int) -> None:
    start, end = T0.replace(hour=0), T0.replace(hour=0) + timedelta(days=2)
    window = f'{{time: {{from: "{start.isoformat()}Z", to: "{end.isoformat()}Z"}}}}'
    async for api in open_access_api(warehouse_url, k=k):
        body = await api(f"{{ agents {{ name metrics(where: {window}) {{ queryCount }} }} }}", **RESEARCH)
    users: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    for query in QUERIES:
        if start <= query["time"] < end:
            users[query["agent"][0]].add(query["user"])
            counts[query["agent"][0]] += 1
    assert "errors" not in body, body
    got = {member["name"]: (member["metrics"] or {}).get("queryCount") for member in body["data"]["agents"]}
    assert got == {name: counts[name] if len(users[name]) >= k else None for name, _ in AGENTS}
    assert body["extensions"]["suppressedRows"] == sum(0 < len(users[name]) < k for name, _ in AGENTS) > 0
