"""Time-relative and gap-filled metrics inside whole requests: drill-across, having, order, paging, totalCount,
``fill`` and ``fillGaps``, and random windows, offsets, grains, zones and filters against plain Python."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics.compiler import DimensionRef, MetricCondition, MetricRequest, OrderBy, Predicate, TimeRange
from metrics.model import FilterOp
from metrics.registry import load_registry
from tests.metrics.catalog_data import BERLIN, Engines, Loaded
from tests.metrics.reference.windows import (
    Windowed,
    compute,
    previous,
    running,
    shifted,
    this_bucket,
    to_date,
    trailing,
)
from tests.metrics.test_time_relative import assert_matches, comparable

BACKENDS = ("duckdb", "postgresql")
CONFIG = Path(__file__).parent / "configs" / "windows"
RANGE = (datetime(2025, 10, 21, 5), datetime(2025, 11, 8))
DAY = DimensionRef.parse("time.day")
TIER = DimensionRef.parse("tier.name")


@pytest.fixture(scope="module")
def with_config(loaded: Loaded) -> Iterator[Engines]:
    engines = Engines(loaded.urls, load_registry([CONFIG]))
    yield engines
    engines.close()


def _range(start: datetime, end: datetime) -> TimeRange:
    return TimeRange(start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))


def _by_day_and_tier(records: list[dict[str, Any]], metric: str) -> dict[tuple[datetime, Any], Any]:
    return {(comparable(r["time.day"]), r["tier.name"]): r[metric] for r in records}


@pytest.mark.parametrize("backend", BACKENDS)
def test_drill_across_windows_of_two_facts_and_a_plain_metric(backend: str, engines: Engines, loaded: Loaded) -> None:
    metrics = ("verification_count_7d", "error_count_7d", "verification_success_rate_7d", "verification_count")
    request = MetricRequest(metrics, (DAY, TIER), time_range=_range(*RANGE), timezone=BERLIN)
    records = engines.query(backend, request).records()
    groups = {(comparable(r["time.day"]), r["tier.name"]) for r in records}
    assert len(groups) == len(records)
    for metric in metrics[:3]:
        wanted = compute(loaded.reference, metric, "day", BERLIN, "tier.name", RANGE)
        assert wanted.keys() <= groups
        empty = None if metric.endswith("_rate_7d") else 0  # a group only the other fact has
        assert_matches(_by_day_and_tier(records, metric), {g: wanted.get(g, empty) for g in groups})
    alone = MetricRequest(("verification_count",), (DAY, TIER), time_range=_range(*RANGE), timezone=BERLIN)
    plain = _by_day_and_tier(engines.query(backend, alone).records(), "verification_count")
    assert _by_day_and_tier(records, "verification_count") == {g: plain.get(g, 0) for g in groups}


@pytest.mark.parametrize("backend", BACKENDS)
def test_having_order_paging_and_total_count(backend: str, engines: Engines, loaded: Loaded) -> None:
    wanted = compute(loaded.reference, "error_count_7d", "day", BERLIN, "tier.name", RANGE)
    kept = [(group, value) for group, value in wanted.items() if value >= 2]
    kept.sort(key=lambda item: (-item[1], item[0][0], item[0][1] is None, (item[0][1] or "").encode()))
    request = MetricRequest(
        ("error_count_7d",),
        (DAY, TIER),
        time_range=_range(*RANGE),
        timezone=BERLIN,
        having=(MetricCondition("error_count_7d", FilterOp.GTE, 2),),
        order_by=(OrderBy("error_count_7d", descending=True),),
        limit=7,
        offset=3,
        total_count=True,
    )
    result = engines.query(backend, request)
    assert result.total_count == len(kept) > 10
    got = [((comparable(r["time.day"]), r["tier.name"]), r["error_count_7d"]) for r in result.records()]
    assert got == kept[3:10]


@pytest.mark.parametrize("backend", BACKENDS)
def test_fill_gaps_returns_every_bucket_counts_zero_others_null(backend: str, engines: Engines, loaded: Loaded) -> None:
    span = (datetime(2025, 9, 28), datetime(2025, 10, 30))  # starts weeks before the first row
    request = MetricRequest(
        ("verification_count", "avg_confidence"),
        (DimensionRef.parse("time.week"),),
        time_range=_range(*span),
        timezone="America/Santiago",
        fill_gaps=True,
    )
    records = engines.query(backend, request).records()
    for metric in ("verification_count", "avg_confidence"):
        wanted = compute(loaded.reference, Windowed(metric, this_bucket), "week", "America/Santiago", None, span)
        assert_matches({(comparable(r["time.week"]), None): r[metric] for r in records}, wanted)
    assert records[0]["verification_count"] == 0 and records[0]["avg_confidence"] is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_fill_on_a_metric(backend: str, with_config: Engines, loaded: Loaded) -> None:
    span = (datetime(2025, 10, 1), datetime(2025, 10, 20))
    request = MetricRequest(
        ("verification_count_filled", "avg_confidence_filled"), (DAY, TIER), time_range=_range(*span)
    )
    records = with_config.query(backend, request).records()
    for metric, base, fill in (
        ("verification_count_filled", "verification_count", 0),
        ("avg_confidence_filled", "avg_confidence", -1.0),
    ):
        wanted = compute(loaded.reference, Windowed(base, this_bucket), "day", "UTC", "tier.name", span)
        got = {(comparable(r["time.day"]), r["tier.name"]): r[metric] for r in records}
        assert_matches(got, {g: fill if v is None else v for g, v in wanted.items()})
        assert any(v is None for v in wanted.values()) or metric == "verification_count_filled"


# --- random windows, offsets, grains, zones and filters ---------------------------------------------

WINDOWS = {
    "error_count_running": Windowed("error_count", running),
    "error_count_2w": Windowed("error_count", trailing(2, "week")),
    "verification_count_ytd": Windowed("verification_count", to_date("year")),
    "verification_count_wtd": Windowed("verification_count", to_date("week")),
    "error_count_month_ago": Windowed("error_count", shifted(1, "month")),
    "verification_count_mtd": Windowed("verification_count", to_date("month")),
    "unique_users_28d": Windowed("unique_users", trailing(28, "day")),
    "unique_users_running": Windowed("unique_users", running),
    "unique_users_mtd": Windowed("unique_users", to_date("month")),
    "unique_users_month_ago": Windowed("unique_users", shifted(1, "month")),
    "unique_users_previous": Windowed("unique_users", previous),
    "error_count_previous": Windowed("error_count", previous),
    "p95_trace_latency_ms_week_ago": Windowed("p95_trace_latency_ms", shifted(1, "week")),
}
KEYS = {
    "errors": ["tier.name", "error_severity", None],
    "verifications": ["tier.level", "verification_status", None],
    "queries": ["agent.type", None],
}
FACT = {"error": "errors", "verification": "verifications", "unique": "queries", "p95": "traces"}
ZONES = ["UTC", BERLIN, "America/Santiago", "Asia/Kolkata", "America/New_York"]
FILTERS = {
    "errors": [None, ("error_severity", ("critical",)), ("tier.name", ("Assist", "Copilot"))],
    "verifications": [None, ("verification_status", ("verified", "failed")), ("agent.name", ("fixer",))],
    "queries": [None, ("agent.type", ("data",))],
    "traces": [None, ("trace_mode", ("deep",))],
}


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, str, str, str | None, tuple[datetime, datetime], Any]:
    metric = draw(st.sampled_from(sorted(WINDOWS)))
    fact = FACT[metric.split("_")[0]]
    grain = draw(st.sampled_from(["hour", "day", "day", "week", "month"]))
    start = datetime(2025, 10, 10) + timedelta(hours=draw(st.integers(0, 24 * 30)))
    length = {"hour": timedelta(hours=draw(st.integers(1, 60))), "month": timedelta(days=draw(st.integers(1, 70)))}
    end = start + length.get(grain, timedelta(days=draw(st.integers(1, 40))))
    key = draw(st.sampled_from(KEYS.get(fact, [None])))
    return metric, grain, draw(st.sampled_from(ZONES)), key, (start, end), draw(st.sampled_from(FILTERS[fact]))


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_random_windows_match_the_reference(with_config: Engines, loaded: Loaded, case: Any) -> None:
    metric, grain, zone, key, span, where = case
    dimensions = (DimensionRef.parse(f"time.{grain}"), *([DimensionRef.parse(key)] if key else []))
    condition = None if where is None else Predicate(DimensionRef.parse(where[0]), FilterOp.IN, list(where[1]))
    request = MetricRequest((metric,), dimensions, where=condition, time_range=_range(*span), timezone=zone)
    wanted = compute(loaded.reference, WINDOWS[metric], grain, zone, key, span, where)
    answers = []
    for backend in BACKENDS:
        records = with_config.query(backend, request).records()
        answers.append({(comparable(r[f"time.{grain}"]), r[key] if key else None): r[metric] for r in records})
        assert_matches(answers[-1], wanted)
    assert answers[0] == answers[1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("metric", "grain"),
    [
        ("unique_users_running", "day"),
        ("unique_users_mtd", "day"),
        ("unique_users_mtd", "week"),
        ("unique_users_month_ago", "day"),
        ("unique_users_previous", "week"),
        ("unique_users_28d", "week"),
    ],
)
def test_distinct_counts_over_every_kind_of_window(
    backend: str, with_config: Engines, loaded: Loaded, metric: str, grain: str
) -> None:
    span, zone, key = (datetime(2025, 10, 20, 7), datetime(2025, 11, 30)), "America/St_Johns", "agent.type"
    dimensions = (DimensionRef.parse(f"time.{grain}"), DimensionRef.parse(key))
    request = MetricRequest((metric,), dimensions, time_range=_range(*span), timezone=zone)
    records = with_config.query(backend, request).records()
    wanted = compute(loaded.reference, WINDOWS[metric], grain, zone, key, span)
    assert sum(1 for value in wanted.values() if value) > 3
    assert_matches({(comparable(r[f"time.{grain}"]), r[key]): r[metric] for r in records}, wanted)
