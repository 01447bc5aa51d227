"""Rollups through GraphQL: answers alike with and without them, explain says which rollup or why none, and the
setting and the argument turn them off."""

from __future__ import annotations

import pytest

from graphql_api.settings import Settings, SettingsError
from tests.graphql_api.conftest import open_api
from tests.metrics.catalog_data import Loaded

DASHBOARD = """query ($rollups: Boolean!) {
  metrics(where: {tier: {name: {neq: "Observe"}}, time: {from: "2025-10-20T10:30:00Z"}}, timezone: "Europe/Berlin",
          orderBy: [{field: "verificationCount", direction: DESC}], rollups: $rollups) {
    rows { day: time(grain: DAY) tier { name } verificationCount verificationSuccessRate avgConfidence
           errorsPerVerification }
    totalCount
  }
  explain(metrics: ["verificationCount", "p95VerificationDurationMs"], dimensions: ["agent.type", "time.week"],
          timezone: "Asia/Kolkata", rollups: $rollups) { plan }
  byAgent: explain(metrics: ["errorCount"], dimensions: ["agent.type", "time.week"], timezone: "America/New_York",
                   rollups: $rollups) { plan }
}"""


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
async def test_rollups_answer_alike_and_explain_says_where_from(rolled_up: Loaded, backend: str) -> None:
    async for api in open_api(rolled_up.urls[backend]):
        body = await api(DASHBOARD, {"rollups": True})
        assert "errors" not in body, body
        routed = body["data"]
        unrouted = (await api(DASHBOARD, {"rollups": False}))["data"]
        assert routed["metrics"] == unrouted["metrics"]
        assert len(routed["metrics"]["rows"]) > 5
        assert "p95_verification_duration_ms is not additive (percentile)" in routed["explain"]["plan"]
        assert "scan rollup errors_by_hour for [1970-01-01 00:00:00, 2100-01-01 00:00:00)" in routed["byAgent"]["plan"]
        assert "rollups are off for this request" in unrouted["byAgent"]["plan"]


async def test_the_setting_turns_rollups_off(rolled_up: Loaded) -> None:
    assert Settings.from_env({"GRACE_METRICS_ROLLUPS": "off"}).rollups is False
    assert Settings.from_env({}).rollups is True
    with pytest.raises(SettingsError, match="GRACE_METRICS_ROLLUPS: 'sometimes' is not true or false"):
        Settings.from_env({"GRACE_METRICS_ROLLUPS": "sometimes"})
    async for api in open_api(rolled_up.urls["duckdb"], rollups=False):
        body = await api('{ explain(metrics: ["errorCount"], dimensions: ["agent.type"]) { plan } }')
        assert "scan the fact table (rollups are off for this request)" in body["data"]["explain"]["plan"]
