"""Every catalog metric by every dimension attribute it allows, on DuckDB and PostgreSQL, against plain Python.

The catalog dataset (``tests.metrics.catalog_data``) is loaded into a DuckDB
and a PostgreSQL warehouse; the cases come from the registry, the expected
values from ``tests.metrics.reference``, which reads the source rows as each
run saw them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from metrics.compiler import DimensionRef, MetricRequest
from metrics.registry import load_registry
from tests.metrics.catalog_data import BERLIN, Engines, Loaded
from tests.metrics.reference import FACTS, GRAINS, MEMBER_TABLES, TIME_PARTS, practices
from warehouse.source import SOURCE_TABLES

BACKENDS = ("duckdb", "postgresql")
REGISTRY = load_registry()


class Answers:
    """Each case's answer per backend, computed once."""

    def __init__(self, engines: Engines) -> None:
        self._engines = engines
        self._cache: dict[tuple[str, Case], dict[Any, Any]] = {}

    def get(self, backend: str, case: Case) -> dict[Any, Any]:
        if (backend, case) not in self._cache:
            dimensions = (DimensionRef.parse(case.dimension),) if case.dimension else ()
            records = self._engines.query(
                backend, MetricRequest(metrics=(case.metric,), dimensions=dimensions, timezone=case.timezone)
            ).records()
            answer = {
                comparable(record[dimensions[0].key]) if dimensions else None: record[case.metric] for record in records
            }
            assert len(answer) == len(records), f"duplicate groups in {records}"
            self._cache[backend, case] = answer
        return self._cache[backend, case]


@pytest.fixture(scope="module")
def answers(engines: Engines) -> Answers:
    return Answers(engines)


# --- the cases --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    metric: str
    dimension: str | None
    timezone: str = "UTC"

    def __str__(self) -> str:
        return f"{self.metric}-{self.dimension or 'total'}" + ("" if self.timezone == "UTC" else f"-{self.timezone}")


def dimension_keys(metric: str) -> list[str]:
    keys: list[str] = []
    for name in sorted(REGISTRY.allowed_dimensions(metric)):
        if name == "time":
            keys += [f"time.{part}" for part in (*GRAINS, *TIME_PARTS)]
        elif REGISTRY.dimensions[name].is_table:
            keys += [f"{name}.{attribute.name}" for attribute in REGISTRY.dimensions[name].attributes]
        else:
            keys.append(name)
    return keys


def all_cases() -> list[Case]:
    cases: list[Case] = []
    for metric in (m for m in REGISTRY.metrics if not REGISTRY.is_time_relative(m)):  # see test_time_relative
        cases += [Case(metric, None), *(Case(metric, key) for key in dimension_keys(metric))]
        cases += [Case(metric, f"time.{part}", BERLIN) for part in ("day", "week", "hour_of_day")]
    return cases


CASES = all_cases()


def comparable(value: Any) -> Any:
    """Time buckets as UTC instants: equal whatever zone object they carry."""
    return value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo is not None else value


def assert_matches(actual: dict[Any, Any], expected: dict[Any, Any]) -> None:
    assert sorted(map(repr, actual)) == sorted(map(repr, expected)), "the groups differ"
    for group, value in expected.items():
        got = actual[group]
        if value is None or isinstance(value, int):
            assert got == value and type(got) is type(value), f"group {group!r}: {got!r} != {value!r}"
        else:
            assert isinstance(got, float) and got == pytest.approx(value, rel=1e-9), (
                f"group {group!r}: {got!r} != {value!r}"
            )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_engine_matches_reference(case: Case, backend: str, answers: Answers, loaded: Loaded) -> None:
    expected = {
        comparable(group): value
        for group, value in loaded.reference.compute(case.metric, case.dimension, case.timezone).items()
    }
    assert_matches(answers.get(backend, case), expected)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_backends_agree_exactly(case: Case, answers: Answers) -> None:
    assert answers.get("duckdb", case) == answers.get("postgresql", case)


def test_the_reference_knows_every_registry_metric(loaded: Loaded) -> None:
    for metric in (m for m in REGISTRY.metrics if not REGISTRY.is_time_relative(m)):
        loaded.reference.compute(metric)


def test_the_source_is_nasty(loaded: Loaded) -> None:
    """NULL in every nullable column, an unknown member and a NULL behind every nullable reference, repeated
    practices."""
    current = loaded.reference.current
    for table in SOURCE_TABLES:
        for column in (c for c in table.columns if c.nullable):
            assert any(row[column.name] is None for row in current[table.name]), (
                f"{table.name}.{column.name} is never NULL"
            )
    for fact in FACTS.values():
        for dimension, reference in fact.references.items():
            if MEMBER_TABLES[dimension].table == fact.table:
                continue
            values = {row[reference] for row in current[fact.table]}
            assert values - loaded.reference.members.known(dimension) - {None}, (
                f"{fact.table}.{reference}: no unknown member"
            )
    assert any(len(set(found)) < len(found) for found in (practices(row["trace"]) for row in current["agent_traces"]))
    assert len({row["tier_name"] for row in current["autonomy_tiers"]} & {"Copilot", "Operations", "Autonomous"}) == 3
    assert MEMBER_TABLES.keys() <= REGISTRY.dimensions.keys()
