"""Plain metrics read through the bucket window of their fact when the request has windows of that fact at its
grain and the range is whole buckets (``whole_bucket_facts``): one scan serves both, and the answers are those
of the plain metric alone, and of plain Python for the windows, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from metrics.compiler import DimensionRef, MetricRequest, TimeRange, compile_query
from metrics.registry import load_registry
from tests.metrics.catalog_data import BERLIN, Engines, Loaded
from tests.metrics.reference.windows import compute
from tests.metrics.test_time_relative import assert_matches, comparable

BACKENDS = ("duckdb", "postgresql")
REGISTRY = load_registry()
DAY, WEEK, HOUR = (DimensionRef.parse(f"time.{grain}") for grain in ("day", "week", "hour"))
TIER = DimensionRef.parse("tier.name")
COMPARED = ("error_count", "error_count_previous", "error_count_change")
BERLIN_DAYS = (datetime(2025, 10, 19, 22), datetime(2025, 11, 2, 23))
"""Local midnights in Berlin, either side of the end of summer time (Oct 20 00:00 CEST, Nov 3 00:00 CET)."""
CUT_DAYS = (datetime(2025, 10, 20, 5), datetime(2025, 11, 3))
"""Starts in the middle of a day: its plain count reads from 05:00, its bucket window the whole day."""


def _request(metrics: tuple[str, ...], *dimensions: DimensionRef, span: Any = None, zone: str = "UTC") -> MetricRequest:
    time_range = None if span is None else TimeRange(*(moment.replace(tzinfo=UTC) for moment in span))
    return MetricRequest(metrics, dimensions, time_range=time_range, timezone=zone)


def _plan(request: MetricRequest) -> str:
    return str(compile_query(request, REGISTRY).plan)


SHARING = {  # request: the fact of its plain metric, and whether that fact's bucket window serves it
    "previous day": (_request(COMPARED, DAY, TIER), "errors", True),
    "Berlin days": (_request(COMPARED, DAY, TIER, span=BERLIN_DAYS, zone=BERLIN), "errors", True),
    "Berlin days in UTC": (_request(COMPARED, DAY, TIER, span=BERLIN_DAYS), "errors", False),  # 22:00: no day start
    "cut day": (_request(COMPARED, DAY, TIER, span=CUT_DAYS), "errors", False),
    "hours": (_request(COMPARED, HOUR), "errors", True),
    "hours in a range": (_request(COMPARED, HOUR, span=BERLIN_DAYS), "errors", False),  # hours keep their aggregate
    "7 days of weeks": (_request(("error_count", "error_count_7d"), WEEK), "errors", False),  # reads days, not weeks
    "another fact": (_request(("verification_count", "error_count_previous"), DAY), "verifications", False),
}


@pytest.mark.parametrize("name", SHARING)
def test_a_plain_metric_reads_the_bucket_window_only_where_it_holds_the_same_rows(name: str) -> None:
    request, fact, shared = SHARING[name]
    plan = _plan(request)
    assert (f"aggregate {fact}:" not in plan) is shared, plan
    metric = request.metrics[0]
    assert (f"  {metric} = {fact}__bucket.{metric}__bucket\n" in plan) is shared, plan


def _by_group(records: list[dict[str, Any]], grain: str, metric: str) -> dict[tuple[datetime, Any], Any]:
    return {(comparable(r[f"time.{grain}"]), r.get("tier.name")): r[metric] for r in records}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("span", "zone"), [(BERLIN_DAYS, BERLIN), (CUT_DAYS, BERLIN), (None, "UTC")], ids=str)
def test_shared_or_not_the_answers_are_the_plain_metrics_and_the_references(
    backend: str, engines: Engines, loaded: Loaded, span: Any, zone: str
) -> None:
    records = engines.query(backend, _request(COMPARED, DAY, TIER, span=span, zone=zone)).records()
    groups = set(_by_group(records, "day", "error_count"))
    assert len(groups) == len(records)
    alone = engines.query(backend, _request(("error_count",), DAY, TIER, span=span, zone=zone)).records()
    plain = _by_group(alone, "day", "error_count")
    assert plain.keys() <= groups
    assert _by_group(records, "day", "error_count") == {group: plain.get(group, 0) for group in groups}
    if span is not None:
        for metric in COMPARED[1:]:
            wanted = compute(loaded.reference, metric, "day", zone, "tier.name", span)
            assert_matches(_by_group(records, "day", metric), wanted)
