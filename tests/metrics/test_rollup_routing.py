"""Routing never changes an answer: random requests answer alike with rollups and without, on both backends.

The requests are drawn as in ``test_backend_parity`` (every fact, up to two attributes, time grains and
attributes in zones with whole-hour, half-hour and DST offsets, nested filters, time bounds, having, order,
limit, offset), leaning towards what rollups can serve (kept dimensions, bounds on and off hour edges), on the
catalog dataset with every built-in rollup built. A good share of them must actually be routed, or the
property would hold trivially.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics.compiler import MetricRequest, TimeRange, compile_query
from tests.metrics.catalog_data import Engines, Loaded
from tests.metrics.test_backend_parity import REGISTRY, completed, instants, selections

KEPT = {dimension for rollup in REGISTRY.rollups.values() for dimension in rollup.dimensions} | {"time"}
on_the_hour = st.integers(0, 31 * 24).map(lambda hours: datetime(2025, 10, 12) + timedelta(hours=hours))


@st.composite
def requests(draw: st.DrawFn) -> MetricRequest:
    metrics, by, where = draw(selections(KEPT if draw(st.integers(0, 3)) else None))
    time_range = None
    if draw(st.booleans()):
        moments = on_the_hour if draw(st.booleans()) else instants
        start, end = sorted(draw(st.lists(moments, min_size=2, max_size=2)), key=lambda m: m.timestamp())
        time_range = TimeRange(draw(st.sampled_from([start, None])), draw(st.sampled_from([end, None])))
    return draw(completed(metrics, by, where, time_range))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
def test_routing_never_changes_an_answer(rolled_up: Loaded, backend: str) -> None:
    engines = Engines({backend: rolled_up.urls[backend]})
    routed: list[bool] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(request=requests())
    def answers_alike(request: MetricRequest) -> None:
        plan = compile_query(request, REGISTRY, rollups=frozenset(REGISTRY.rollups)).plan
        routed.append(any(aggregate.scan.rollup is not None for aggregate in plan.aggregates))
        with_rollups = engines.query(backend, request)
        without = engines.query(backend, replace(request, rollups=False))
        assert with_rollups.rows == without.rows, str(plan)
        assert with_rollups.total_count == without.total_count

    try:
        answers_alike()
    finally:
        engines.close()
    assert sum(routed) >= 0.4 * len(routed), f"only {sum(routed)} of {len(routed)} requests read a rollup"
