"""Random requests give the same answers on DuckDB and PostgreSQL, to the last digit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics import MetricsClient
from metrics.compiler.request import TIME_PARTS
from metrics.model import TimeGrain
from metrics.registry import load_registry

REGISTRY = load_registry()
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
FAMILIES = [  # metrics that can be asked together (their facts share dimensions)
    [m for m in REGISTRY.metrics if {f.name for f in REGISTRY.facts_of(m)} <= facts]
    for facts in ({"verifications", "errors"}, {"approvals"}, {"queries"}, {"traces", "practice_steps"}, {"missions"}, {"feedback"})
]


def _attributes(dimension: str) -> list[str]:
    if dimension == "time":
        return [f"time.{g.value}" for g in TimeGrain] + [f"time.{p}" for p in TIME_PARTS]
    spec = REGISTRY.dimensions[dimension]
    return [f"{dimension}.{a.name}" for a in spec.attributes] if spec.is_table else [dimension]


@st.composite
def requests(draw: st.DrawFn) -> dict[str, object]:
    family = draw(st.sampled_from([f for f in FAMILIES if f]))
    metrics = draw(st.lists(st.sampled_from(family), min_size=1, max_size=4, unique=True))
    allowed = set.intersection(*(REGISTRY.allowed_dimensions(m) for m in metrics))
    attributes = [a for d in sorted(allowed) for a in _attributes(d)]
    by = draw(st.lists(st.sampled_from(attributes), max_size=2, unique=True))
    options: dict[str, object] = {"by": by, "timezone": draw(st.sampled_from(ZONES))}
    if "tier" in allowed and draw(st.booleans()):
        options["where"] = {"tier.level": {draw(st.sampled_from(["gte", "lt", "neq"])): draw(st.integers(0, 2))}}
    if draw(st.booleans()):
        options["order_by"] = [draw(st.sampled_from([f"-{m}" for m in metrics] + list(metrics)))]
        options["limit"] = draw(st.integers(1, 20))
    return {"metrics": metrics, **options}


@pytest.fixture(scope="module")
def clients(duckdb_warehouse: str, postgresql_warehouse: str) -> Iterator[tuple[MetricsClient, MetricsClient]]:
    with MetricsClient(duckdb_warehouse) as duck, MetricsClient(postgresql_warehouse) as postgres:
        yield duck, postgres


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests())
def test_duckdb_and_postgresql_agree(clients: tuple[MetricsClient, MetricsClient], request: dict[str, object]) -> None:
    duck, postgres = clients
    metrics = request.pop("metrics")
    on_duckdb = duck.query(metrics, **request).to_pylist()  # type: ignore[arg-type]
    on_postgres = postgres.query(metrics, **request).to_pylist()  # type: ignore[arg-type]
    if "order_by" in request:  # ties may come back in either order
        key = repr
        on_duckdb, on_postgres = sorted(on_duckdb, key=key), sorted(on_postgres, key=key)
    assert on_duckdb == on_postgres
