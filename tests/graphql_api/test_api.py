"""The GraphQL API over HTTP on DuckDB and PostgreSQL: shapes, numbers, batching, errors."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import pytest

from graphql_api.schema import build_schema
from metrics.registry import load_registry
from tests.graphql_api.conftest import CUSTOM_CONFIG, Api, open_api
from tests.small_source import AGENTS, TIERS

STATUSES = [("verified", "verified", "failed", "pending")[i % 4] for i in range(60)]
TIER_OF = [TIERS[i % 3][1] for i in range(60)]


def _expected_by_tier() -> dict[str, tuple[int, float]]:
    expected = {}
    for _, name, _ in TIERS:
        statuses = [s for s, t in zip(STATUSES, TIER_OF, strict=True) if t == name]
        completed = [s for s in statuses if s != "pending"]
        expected[name] = (len(statuses), completed.count("verified") / len(completed))
    return expected


def test_committed_schema_is_the_generated_one() -> None:
    committed = (Path(__file__).parents[2] / "schema.graphql").read_text()
    assert committed == build_schema(load_registry()).as_str() + "\n", "run `grace-metrics schema > schema.graphql`"


def test_custom_metric_appears_in_the_schema_without_code() -> None:
    sdl = build_schema(load_registry([CUSTOM_CONFIG])).as_str()
    assert (
        "criticalErrorShare: Float" in sdl
        and "criticalErrorCount: Int" in sdl
        and "criticalErrorShare: NumberFilter" in sdl
    )


async def test_rows_selection_with_fragments_aliases_and_variables(api: Api) -> None:
    body = await api(
        """
        query ($grain: TimeGrain!, $tiers: [String!]) {
          metrics(where: {tier: {name: {in: $tiers}}}, orderBy: [{field: "tier.name"}]) {
            rows {
              ...Tier ... on MetricRow { count: verificationCount rate: verificationSuccessRate }
              bucket: time(grain: $grain)
            }
            totalCount
          }
        }
        fragment Tier on MetricRow { tier { name } }
        """,
        {"grain": "YEAR", "tiers": ["Observe", "Assist"]},
    )
    expected = _expected_by_tier()
    rows = body["data"]["metrics"]["rows"]
    assert [(r["tier"]["name"], r["count"], r["rate"]) for r in rows] == [
        ("Assist", *expected["Assist"][:1], pytest.approx(expected["Assist"][1])),
        ("Observe", *expected["Observe"][:1], pytest.approx(expected["Observe"][1])),
    ]
    assert {r["bucket"] for r in rows} == {"2025-01-01T00:00:00+00:00"}


async def test_two_grains_in_one_row_and_time_zone(api: Api) -> None:
    body = await api(
        '{ metrics(timezone: "America/New_York", limit: 1) '
        "{ rows { d: time(grain: DAY) w: time(grain: WEEK) hourOfDay verificationCount } } }"
    )
    [row] = body["data"]["metrics"]["rows"]
    # The first contract is at 09:00 UTC, 04:00 in New York.
    assert row == {
        "d": "2025-11-03T00:00:00-05:00",
        "w": "2025-11-03T00:00:00-05:00",
        "hourOfDay": 4,
        "verificationCount": 1,
    }


async def test_order_limit_offset_and_page_info(api: Api) -> None:
    query = (
        'query ($offset: Int!) { metrics(orderBy: [{field: "verificationCount", direction: DESC}], limit: 2, '
        "offset: $offset) { rows { agent { name } verificationCount } totalCount pageInfo { hasNextPage } } }"
    )
    first = (await api(query, {"offset": 0}))["data"]["metrics"]
    last = (await api(query, {"offset": 2}))["data"]["metrics"]
    counts = Counter(AGENTS[i % 3][0] if i % 4 else None for i in range(60))
    ranked = sorted(counts.values(), reverse=True)
    assert [r["verificationCount"] for r in first["rows"] + last["rows"]] == ranked
    assert (first["totalCount"], first["pageInfo"]["hasNextPage"], last["pageInfo"]["hasNextPage"]) == (4, True, False)


async def test_drill_across_and_having(api: Api) -> None:
    body = await api(
        "{ metrics(having: {errorCount: {gte: 7}}) "
        "{ rows { agent { name } errorCount verificationCount errorsPerVerification } } }"
    )
    rows = body["data"]["metrics"]["rows"]
    errors = Counter(AGENTS[i % 3][0] for i in range(20))
    verifications = Counter(AGENTS[i % 3][0] for i in range(60) if i % 4)
    assert rows == [
        {
            "agent": {"name": name},
            "errorCount": errors[name],
            "verificationCount": verifications[name],
            "errorsPerVerification": pytest.approx(errors[name] / verifications[name]),
        }
        for name in sorted(errors)
        if errors[name] >= 7
    ]


async def test_member_navigation_costs_one_query_for_all_members(api: Api) -> None:
    body = await api("{ agents { name type metrics { queryCount p95QueryLatencyMs } } }")
    assert api.statements == 2  # the members, then one query for all their metrics
    latencies = {name: [50 * (i + 1) for i in range(30) if AGENTS[i % 3][0] == name] for name, _ in AGENTS}
    assert body["data"]["agents"] == [
        {
            "name": name,
            "type": kind,
            "metrics": {
                "queryCount": 10,
                "p95QueryLatencyMs": pytest.approx(statistics.quantiles(latencies[name], n=20, method="inclusive")[18]),
            },
        }
        for name, kind in AGENTS
    ]


async def test_catalog_table_and_explain(api: Api) -> None:
    body = await api(
        """{ catalog { metrics { name graphqlName kind type format dimensions } }
             table(metrics: ["verificationCount", "error_count"], dimensions: ["tier.name"], limit: 1) {
               columns { name type } rows totalCount
             }
             explain(metrics: ["verificationCount"], dimensions: ["tier.name"]) { sql plan } }"""
    )
    data = body["data"]
    rate = next(m for m in data["catalog"]["metrics"] if m["name"] == "verification_success_rate")
    assert rate == {
        "name": "verification_success_rate",
        "graphqlName": "verificationSuccessRate",
        "kind": "ratio",
        "type": "float",
        "format": "percent",
        "dimensions": sorted(load_registry().allowed_dimensions("verification_success_rate")),
    }
    assert data["table"]["columns"] == [
        {"name": "tier.name", "type": "string"},
        {"name": "verification_count", "type": "integer"},
        {"name": "error_count", "type": "integer"},
    ]
    assert data["table"]["rows"] == [["Assist", 20, 10]] and data["table"]["totalCount"] == 3
    assert "GROUP BY" in data["explain"]["sql"] and data["explain"]["plan"].startswith("by [tier.name]")


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        ("{ metrics { rows { verificationCont } } }", "UNKNOWN_FIELD", "Did you mean 'verificationCount'"),
        (
            "{ metrics { rows { queryCount tier { name } } } }",
            "INVALID_DIMENSION",
            "its dimensions are: agent, time, user",
        ),
        (
            '{ metrics(where: {tier: {level: {eq: "two"}}}) { rows { errorCount } } }',
            "INVALID_FILTER",
            "Int cannot represent",
        ),
        ('{ metrics(timezone: "Mars/Olympus") { rows { errorCount } } }', "INVALID_ARGUMENT", "unknown time zone"),
        ("{ metrics(limit: 10001) { rows { errorCount } } }", "LIMIT_EXCEEDED", "maximum of 10000"),
        ("{ metrics { rows { tier { name } } } }", "INVALID_ARGUMENT", "select at least one metric"),
        ('{ table(metrics: ["nope"]) { totalCount } }', "UNKNOWN_FIELD", "unknown metric 'nope'"),
        ("{ metrics { rows { errorCount } ", "BAD_REQUEST", "Syntax Error"),
    ],
)
async def test_errors_carry_codes(api: Api, query: str, code: str, message: str) -> None:
    body = await api(query)
    [error] = body["errors"]
    assert error["extensions"]["code"] == code and message in error["message"]


async def test_having_on_a_timestamp_metric_compares_times(warehouse_url: str, tmp_path: Path) -> None:
    """A max over a timestamp is a time, so its having filter takes times (with an offset), not numbers."""
    (tmp_path / "last.yaml").write_text(
        "metrics:\n  last_error_at:\n    label: Last error\n    description: When the latest error occurred.\n"
        "    fact: errors\n    aggregation: max\n    column: occurred_at\n"
    )
    registry = load_registry([tmp_path])
    assert "lastErrorAt: DateTimeFilter" in build_schema(registry).as_str()
    query = '{ metrics(having: {lastErrorAt: {%s: "%s"}}) { rows { lastErrorAt } } }'
    async for api in open_api(warehouse_url, registry):
        [row] = (await api(query % ("gte", "2000-01-01T00:00:00Z")))["data"]["metrics"]["rows"]
        assert (await api(query % ("gt", row["lastErrorAt"])))["data"]["metrics"]["rows"] == []
        assert (await api(query % ("lte", row["lastErrorAt"])))["data"]["metrics"]["rows"] == [row]
        [error] = (await api(query % ("lt", "2000-01-01T00:00:00")))["errors"]
        assert error["extensions"]["code"] == "INVALID_FILTER" and "having.lastErrorAt.lt" in error["message"]


async def test_roles_gate_the_api_and_explain(duckdb_warehouse: str) -> None:
    async for api in open_api(duckdb_warehouse, api_keys={"v-key": "viewer", "a-key": "analyst"}):
        anonymous = await api.client.post("/graphql", json={"query": "{ metrics { rows { errorCount } } }"})
        assert anonymous.status_code == 401  # refused before execution
        assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHORIZED"
        viewer = await api('{ explain(metrics: ["errorCount"]) { sql } }', authorization="Bearer v-key")
        assert viewer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        analyst = await api('{ explain(metrics: ["errorCount"]) { sql } }', authorization="Bearer a-key")
        assert "fact_errors" in analyst["data"]["explain"]["sql"]


async def test_time_relative_metrics_are_typed_fields_with_every_bucket(api: Api) -> None:
    body = await api(
        """
        { metrics(where: {time: {from: "2025-11-01T00:00:00Z", to: "2025-11-06T00:00:00Z"}}) {
            rows { day: time(grain: DAY) verificationCount7d errorCountChange }
            totalCount } }
        """
    )
    rows = body["data"]["metrics"]["rows"]
    days = [row["day"] for row in rows]
    assert days == [f"2025-11-0{d}T00:00:00+00:00" for d in range(1, 6)]  # Nov 1-2 have no rows at all
    hours = [7 * i for i in range(60)]  # verifications at T0 + 7 h * i, T0 = 2025-11-03 09:00 UTC
    ends = [(d - 3) * 24 - 9 + 24 for d in range(1, 6)]  # each day's end, in hours after T0
    assert [row["verificationCount7d"] for row in rows] == [sum(1 for h in hours if h < end) for end in ends]
    assert body["data"]["metrics"]["totalCount"] == 5
    assert all(isinstance(row["errorCountChange"], int) for row in rows)


async def test_time_relative_metric_without_a_time_grain_says_what_it_needs(api: Api) -> None:
    body = await api("{ metrics { rows { tier { name } verificationCount7d } } }")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INVALID_DIMENSION"
    assert "'verification_count_7d' is time-relative" in error["message"]
    assert "select exactly one time grain (time.minute, time.hour, time.day" in error["message"]


async def test_fill_gaps_returns_every_bucket(api: Api) -> None:
    body = await api(
        """
        { metrics(fillGaps: true, where: {time: {from: "2025-10-30T00:00:00Z", to: "2025-11-04T00:00:00Z"}}) {
            rows { time(grain: DAY) verificationCount avgConfidence } } }
        """
    )
    rows = body["data"]["metrics"]["rows"]
    assert [row["time"][:10] for row in rows] == ["2025-10-30", "2025-10-31", "2025-11-01", "2025-11-02", "2025-11-03"]
    assert [(row["verificationCount"], row["avgConfidence"]) for row in rows[:4]] == [(0, None)] * 4
    assert rows[4]["verificationCount"] == 3  # 09:00, 16:00, 23:00


async def test_ad_hoc_window_and_compare_on_any_metric_field(api: Api) -> None:
    body = await api(
        """
        { metrics(where: {time: {from: "2025-11-03T00:00:00Z", to: "2025-11-07T00:00:00Z"}}) {
            rows { day: time(grain: DAY) verificationCount
                   last2: verificationCount(window: {days: 2}) mtd: verificationCount(window: {toDate: MONTH})
                   before: verificationCount(compare: PREVIOUS_PERIOD) weekAgo: verificationCount(compare: WEEK_AGO)
                   rate3d: verificationSuccessRate(window: {days: 3}) }
            totalCount } }
        """
    )
    assert "errors" not in body, body
    rows = body["data"]["metrics"]["rows"]
    counts = [row["verificationCount"] for row in rows]
    assert [row["last2"] for row in rows] == [counts[0], *(a + b for a, b in zip(counts, counts[1:], strict=False))]
    assert [row["mtd"] for row in rows] == [sum(counts[: i + 1]) for i in range(len(counts))]
    assert [row["before"] for row in rows] == [0, *counts[:-1]]
    assert [row["weekAgo"] for row in rows] == [0] * len(rows)
    hours = [7 * i for i in range(60)]  # T0 + 7 h * i, T0 = 2025-11-03 09:00 UTC; 3 of every 4 completed
    ends = [15 + 24 * d for d in range(4)]  # each day's end, in hours after T0
    for row, end in zip(rows, ends, strict=True):
        completed = [s for h, s in zip(hours, STATUSES, strict=True) if end - 72 <= h < end and s != "pending"]
        assert row["rate3d"] == pytest.approx(completed.count("verified") / len(completed))


@pytest.mark.parametrize(
    ("field", "code", "message"),
    [
        ("verificationCount(window: {days: 7, weeks: 1})", "INVALID_ARGUMENT", "window takes exactly one of days: N"),
        ("verificationCount(window: {days: 0})", "INVALID_ARGUMENT", "use 1 to 9999"),
        ("verificationCount(window: {unbounded: false})", "INVALID_ARGUMENT", "unbounded: false is no window"),
        ("verificationCount(window: {days: 7}, compare: YEAR_AGO)", "INVALID_ARGUMENT", "cannot be combined"),
        ("verificationCount(compare: LAST_WEEK)", "INVALID_ARGUMENT", "'Compare'"),
        (
            "verificationCount(window: {months: 1})",
            "INVALID_ARGUMENT",
            "'MetricWindow' not to include unknown field 'months'",
        ),
        ("verificationCount(windw: {days: 1})", "UNKNOWN_FIELD", "Did you mean 'window'?"),
        ("verificationCount7d(window: {days: 1})", "UNKNOWN_FIELD", "Unknown argument 'window'"),
    ],
)
async def test_ad_hoc_forms_say_what_is_allowed(api: Api, field: str, code: str, message: str) -> None:
    body = await api(f"{{ metrics {{ rows {{ time(grain: DAY) {field} }} }} }}")
    [error] = body["errors"]
    assert (error["extensions"]["code"], message in error["message"]) == (code, True), error


async def test_ad_hoc_form_needs_a_time_grain(api: Api) -> None:
    body = await api("{ metrics { rows { tier { name } verificationCount(compare: PREVIOUS_PERIOD) } } }")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INVALID_DIMENSION"
    assert "'verification_count__previous' is time-relative" in error["message"]
