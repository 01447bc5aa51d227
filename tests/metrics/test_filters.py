"""Filters on the catalog dataset, on DuckDB and PostgreSQL, against plain Python over the source rows.

Time ranges (from inclusive, to exclusive, whatever the offset they are
written in), nested or/not over attributes of several types (a predicate on a null is
false, so ``not`` keeps nulls), and the one rule
for the bridged ``practice`` dimension:

- sliced by practice, a trace counts once under each practice it recommends,
  or once under the null practice if it recommends none; a filter applies to
  each of those rows;
- unsliced, a predicate on practice asks whether the trace recommends a
  matching practice (a trace with none has the null practice); ``not``
  negates that.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from metrics.compiler import DimensionRef, Filter, MetricRequest, Not, Or, Predicate, TimeRange
from metrics.model import FilterOp
from tests.metrics.catalog_data import EDGES, Engines, Loaded
from tests.metrics.reference import Row, practices

BACKENDS = ("duckdb", "postgresql")
PRACTICE = DimensionRef("practice")


def _where(key: str, op: FilterOp, value: object) -> Predicate:
    return Predicate(DimensionRef.parse(key), op, value)


def _traces(loaded: Loaded) -> list[tuple[Row, list[Any]]]:
    return [(row, practices(row["trace"])) for row in loaded.reference.current["agent_traces"]]


def _recommended(found: list[Any]) -> set[Any]:
    """A trace's practice values: those it recommends, or the null practice."""
    return set(found) or {None}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("start", "end"),
    [
        (EDGES[0], EDGES[1]),
        (EDGES[0].replace(tzinfo=UTC), EDGES[1].replace(tzinfo=UTC)),
        (
            EDGES[0].replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=2))),
            EDGES[1].replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=1))),
        ),
    ],
    ids=["naive-is-utc", "utc", "berlin-offsets"],
)
def test_time_range_includes_from_and_excludes_to(
    backend: str, start: datetime, end: datetime, engines: Engines, loaded: Loaded
) -> None:
    """Events sit exactly at both ends (00:30 and 01:30 UTC on 2025-10-26)."""
    created = [row["created_at"] for row in loaded.reference.current["action_contracts"]]
    expected = sum(1 for moment in created if EDGES[0] <= moment < EDGES[1])
    assert EDGES[0] in created and EDGES[1] in created and expected >= 1
    result = engines.query(backend, MetricRequest(("verification_count",), time_range=TimeRange(start, end)))
    assert result.rows == [(expected,)]


_TIER_OR_NOT_VERIFIED = Or(
    (_where("tier.level", FilterOp.GTE, 2), Not(_where("verification_status", FilterOp.IN, ("verified",))))
)
_TEAMLESS_OR_DATA_AGENT = Or(
    (_where("actor.team", FilterOp.IS_NULL, True), Not(Not(_where("agent.type", FilterOp.EQ, "data"))))
)
_NOT_BOTH = Not(Or((_where("component.kernel", FilterOp.LIKE, "orch%"), _where("time.is_weekend", FilterOp.EQ, True))))


def _or_not_cases(loaded: Loaded) -> dict[str, tuple[Filter, Callable[[Row], bool]]]:
    members = loaded.reference.members

    def attribute(row: Row, dimension: str, attribute: str, reference: str) -> Any:
        return members.attribute(dimension, attribute, row[reference], row["created_at"])

    def level_at_least_2(row: Row) -> bool:
        level = attribute(row, "tier", "level", "tier_id")
        return level is not None and level >= 2

    def kernel_orch(row: Row) -> bool:
        kernel = attribute(row, "component", "kernel", "component_name")
        return kernel is not None and kernel.startswith("orch")

    return {
        "tier-or-not-verified": (
            _TIER_OR_NOT_VERIFIED,
            lambda row: level_at_least_2(row) or row["status"] != "verified",
        ),
        "teamless-or-data-agent": (
            _TEAMLESS_OR_DATA_AGENT,
            lambda row: (
                attribute(row, "actor", "team", "actor_id") is None
                or attribute(row, "agent", "type", "agent_name") == "data"
            ),
        ),
        "not-orchestration-or-weekend": (
            _NOT_BOTH,
            lambda row: not (kernel_orch(row) or row["created_at"].isoweekday() >= 6),
        ),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["tier-or-not-verified", "teamless-or-data-agent", "not-orchestration-or-weekend"])
def test_nested_or_and_not(backend: str, case: str, engines: Engines, loaded: Loaded) -> None:
    where, keep = _or_not_cases(loaded)[case]
    rows = [row for row in loaded.reference.current["action_contracts"] if keep(row)]
    durations = [row["duration_ms"] for row in rows if row["duration_ms"] is not None]
    assert 0 < len(rows) < len(loaded.reference.current["action_contracts"])
    result = engines.query(backend, MetricRequest(("verification_count", "avg_verification_duration_ms"), where=where))
    [(count, mean)] = result.rows
    assert count == len(rows) and mean == pytest.approx(statistics.fmean(durations), rel=1e-9)


UNSLICED: dict[str, tuple[Filter, Callable[[set[Any]], bool]]] = {
    "eq": (Predicate(PRACTICE, FilterOp.EQ, "tdd"), lambda values: "tdd" in values),
    "not-in": (Predicate(PRACTICE, FilterOp.NOT_IN, ("tdd",)), lambda values: any(value != "tdd" for value in values)),
    "not-of-in": (Not(Predicate(PRACTICE, FilterOp.IN, ("tdd",))), lambda values: "tdd" not in values),
    "neq": (Predicate(PRACTICE, FilterOp.NEQ, "tdd"), lambda values: any(value != "tdd" for value in values)),
    "is-null": (Predicate(PRACTICE, FilterOp.IS_NULL, True), lambda values: values == {None}),
    "is-not-null": (Predicate(PRACTICE, FilterOp.IS_NULL, False), lambda values: None not in values),
    "like-or-critical": (
        Or((Predicate(PRACTICE, FilterOp.LIKE, "pair%"), _where("safety_level", FilterOp.EQ, "critical"))),
        lambda values: any(value is not None and value.startswith("pair") for value in values),
    ),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", UNSLICED)
def test_practice_filter_without_slicing_asks_whether_the_trace_recommends_one(
    backend: str, case: str, engines: Engines, loaded: Loaded
) -> None:
    where, holds = UNSLICED[case]
    critical = case == "like-or-critical"
    kept = [
        (row, found)
        for row, found in _traces(loaded)
        if holds(_recommended(found)) or (critical and row["safety_level"] == "critical")
    ]
    assert 0 < len(kept) < len(_traces(loaded))
    result = engines.query(backend, MetricRequest(("trace_count", "avg_trace_latency_ms"), where=where))
    assert result.rows == [(len(kept), pytest.approx(statistics.fmean(row["latency_ms"] for row, _ in kept), rel=1e-9))]


SLICED: dict[str, tuple[Filter | None, Callable[[Any], bool]]] = {
    "all": (None, lambda value: True),
    "is-null": (Predicate(PRACTICE, FilterOp.IS_NULL, True), lambda value: value is None),
    "not-in": (Predicate(PRACTICE, FilterOp.NOT_IN, ("tdd",)), lambda value: value != "tdd"),
    "not-of-eq": (Not(Predicate(PRACTICE, FilterOp.EQ, "tdd")), lambda value: value != "tdd"),  # a null is not tdd
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", SLICED)
def test_sliced_by_practice_a_trace_without_one_shows_under_the_null_practice(
    backend: str, case: str, engines: Engines, loaded: Loaded
) -> None:
    where, keep = SLICED[case]
    expected: dict[Any, list[int]] = {}
    for _, found in _traces(loaded):
        for value in _recommended(found):
            if keep(value):
                counts = expected.setdefault(value, [0, 0])
                counts[0] += 1
                counts[1] += found.count(value) if value is not None else 0
    result = engines.query(
        backend, MetricRequest(("trace_count", "practice_recommendation_count"), (PRACTICE,), where=where)
    )
    assert {practice: [traces, steps] for practice, traces, steps in result.rows} == expected
    assert None in expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_practice_steps_filter_by_their_own_practice(backend: str, engines: Engines, loaded: Loaded) -> None:
    steps = sum(found.count("tdd") for _, found in _traces(loaded))
    result = engines.query(
        backend, MetricRequest(("practice_recommendation_count",), where=Predicate(PRACTICE, FilterOp.EQ, "tdd"))
    )
    assert result.rows == [(steps,)] and steps > 1
