"""A team's config adds a dimension to a built-in fact: the built-in metrics slice by it, as plain Python over the
source says."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from metrics.compiler import DimensionRef, MetricRequest
from metrics.registry import load_registry
from tests.metrics.catalog_data import Engines, Loaded

BACKENDS = ("duckdb", "postgresql")
CONFIGS = Path(__file__).parent / "configs"


@pytest.fixture(scope="module")
def extended(loaded: Loaded) -> Iterator[Engines]:
    engines = Engines(loaded.urls, load_registry([CONFIGS / "extend_fact"]))
    yield engines
    engines.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_builtin_metrics_slice_by_a_dimension_a_team_added(extended: Engines, loaded: Loaded, backend: str) -> None:
    contracts = loaded.reference.current["action_contracts"]
    every = Counter(bool(row["rolled_back"]) for row in contracts)
    slow = Counter(
        bool(row["rolled_back"]) for row in contracts if row["duration_ms"] is not None and row["duration_ms"] > 1000
    )
    assert len(every) == 2, "the dataset must hold both values for this test to mean anything"
    request = MetricRequest(("verification_count", "slow_verification_count"), (DimensionRef.parse("rolled_back"),))
    answer = {
        record["rolled_back"]: (record["verification_count"], record["slow_verification_count"])
        for record in extended.query(backend, request).records()
    }
    assert answer == {value: (every[value], slow[value]) for value in every}
