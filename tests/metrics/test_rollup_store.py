"""Rollup tables built and refreshed on real warehouses (DuckDB and PostgreSQL) hold what the fact rows give.

The reference is computed in Python from the fact and dimension rows read back from the same warehouse:
buckets, member keys, the type-2 version valid at each event time, and each measure's parts with its filter.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from metrics.compiler.rollup_parts import PARTS, kept, stored_measures
from metrics.compiler.rollup_tables import rollup_table
from metrics.model import Aggregation, ColumnRef, Condition, FilterOp, Rollup
from metrics.registry import load_registry
from metrics.rollup_store import DEFINITIONS_TABLE, Touched, ensure_rollups, refresh_rollups
from tests.metrics.catalog_data import Loaded
from warehouse.connections import warehouse_url

REGISTRY = load_registry()
CHECKED = ["verifications_by_hour", "verifications_by_actor_day", "queries_by_hour", "approvals_by_hour"]
BACKENDS = ["duckdb", "postgresql"]


@pytest.fixture
def connection(rolled_up: Loaded, request: pytest.FixtureRequest) -> Iterator[sa.Connection]:
    """A transaction on the rolled-up warehouse, rolled back after the test (the warehouse is shared)."""
    engine = sa.create_engine(warehouse_url(rolled_up.urls[request.param]), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()
    engine.dispose()


def _holds(row: dict[str, Any], condition: Condition) -> bool:
    value = row[condition.column]
    other = row[condition.value.column] if isinstance(condition.value, ColumnRef) else condition.value
    op = condition.op
    if op is FilterOp.IS_NULL:
        return (value is None) == other
    if op is FilterOp.NEQ:
        return value != other
    if op is FilterOp.NOT_IN:
        return value is None or value not in other
    if value is None or other is None:
        return False
    return {
        FilterOp.EQ: lambda: value == other,
        FilterOp.IN: lambda: value in other,
        FilterOp.GT: lambda: value > other,
        FilterOp.GTE: lambda: value >= other,
        FilterOp.LT: lambda: value < other,
        FilterOp.LTE: lambda: value <= other,
    }[op]()


def _decimal(value: Any) -> Decimal:
    return Decimal(value).quantize(Decimal("1e-9"), ROUND_HALF_EVEN)


def _seconds(row: dict[str, Any], start: str, end: str) -> float | None:
    return None if row[start] is None or row[end] is None else (row[end] - row[start]).total_seconds()


def _floor(moment: datetime, grain: str) -> datetime:
    moment = moment.replace(second=0, microsecond=0)
    if grain in ("hour", "day"):
        moment = moment.replace(minute=0)
    return moment.replace(hour=0) if grain == "day" else moment


def expected(connection: sa.Connection, rollup: Rollup) -> list[tuple[Any, ...]]:
    """The rollup's rows computed in Python from the fact rows and the dimensions' versions."""
    fact = REGISTRY.facts[rollup.fact]
    rows = [dict(row) for row in connection.execute(sa.text(f"SELECT * FROM {fact.table}")).mappings()]
    for row in rows:  # the catalog's computed columns this test reads
        if "requested_at" in row:
            row["latency_s"] = _seconds(row, "requested_at", "resolved_at")
    versions: dict[str, list[tuple[Any, ...]]] = {}
    for dimension in kept(rollup, REGISTRY):
        member = REGISTRY.dimensions[dimension.dimension]
        if dimension.valid_from is not None:
            query = f"SELECT {member.key}, valid_from, valid_to FROM {member.table}"
            versions[dimension.column] = [tuple(r) for r in connection.execute(sa.text(query))]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        key: list[Any] = [_floor(row[fact.time], rollup.grain.value)]
        for dimension in kept(rollup, REGISTRY):
            key.append(row[dimension.column])
            if dimension.valid_from is not None:
                at = row[fact.time]
                matching = [
                    vf for k, vf, vt in versions[dimension.column] if k == row[dimension.column] and vf <= at < vt
                ]
                key.append(matching[0] if matching else None)
        groups.setdefault(tuple(key), []).append(row)
    result = []
    for key, members in groups.items():
        parts: list[Any] = []
        for measure in stored_measures(rollup, REGISTRY).values():
            chosen = [r for r in members if all(_holds(r, c) for c in measure.filter)]
            values = [r[measure.column] for r in chosen if r[measure.column] is not None] if measure.column else None
            for part in PARTS[measure.aggregation]:
                if part == "count":
                    parts.append(len(chosen) if values is None else len(values))
                elif part == "sum":  # integers summed as integers, floats and averages as exact decimals
                    integers = all(isinstance(v, int) for v in values) and measure.aggregation is Aggregation.SUM
                    parts.append((sum(values) if integers else sum(map(_decimal, values))) if values else None)
                else:
                    parts.append((min if part == "min" else max)(values) if values else None)
        result.append((*key, *parts))
    return sorted(result, key=repr)


def stored(connection: sa.Connection, rollup: Rollup) -> list[tuple[Any, ...]]:
    table = rollup_table(rollup, REGISTRY)
    return sorted((tuple(row) for row in connection.execute(sa.select(table))), key=repr)


@pytest.mark.parametrize("connection", BACKENDS, indirect=True)
@pytest.mark.parametrize("name", CHECKED)
def test_a_full_build_holds_what_the_fact_rows_give(connection: sa.Connection, name: str) -> None:
    rollup = REGISTRY.rollups[name]
    rows = stored(connection, rollup)
    assert rows == expected(connection, rollup)
    assert len(rows) > 10
    if rollup.fact == "verifications":  # unknown members, members without a version at the event time, nulls
        assert any(value is None for row in rows for value in row)


@pytest.mark.parametrize("connection", BACKENDS, indirect=True)
def test_ensure_builds_once_and_follows_the_declarations(connection: sa.Connection) -> None:
    assert ensure_rollups(connection, REGISTRY) == []  # built by the fixture, nothing changed since
    rollup = REGISTRY.rollups["queries_by_hour"]
    changed_measure = replace(REGISTRY.metrics["query_count"].measure, column="latency_ms")
    changed = load_registry()
    changed.metrics["query_count"] = replace(changed.metrics["query_count"], measure=changed_measure)
    changed.rollups["queries_by_day"] = replace(rollup, name="queries_by_day", grain=rollup.grain.DAY)
    del changed.rollups["feedback_by_hour"]
    done = ensure_rollups(connection, changed)
    assert sorted((write.action, write.rollup) for write in done) == [
        ("created", "queries_by_day"),
        ("dropped", "feedback_by_hour"),
        ("rebuilt", "queries_by_hour"),
    ]
    assert stored(connection, changed.rollups["queries_by_day"]) == expected(
        connection, changed.rollups["queries_by_day"]
    )
    names = set(connection.execute(sa.select(DEFINITIONS_TABLE.c.name)).scalars())
    assert names == set(changed.rollups)
    assert ensure_rollups(connection, changed) == []


@pytest.mark.parametrize("connection", BACKENDS, indirect=True)
def test_a_refresh_recomputes_the_touched_buckets_and_members(connection: sa.Connection) -> None:
    rollup = REGISTRY.rollups["verifications_by_hour"]
    table = rollup_table(rollup, REGISTRY)
    before = stored(connection, rollup)
    start, end = datetime(2025, 10, 26, 0, 45), datetime(2025, 11, 5, 8, 0)
    connection.execute(sa.delete(table))  # every bucket lost: only refreshed ones come back
    done = refresh_rollups(connection, REGISTRY, [Touched("fact_verifications", start, end)])
    verifications = {name for name, r in REGISTRY.rollups.items() if r.fact == "verifications"}
    assert {r.rollup for r in done} == verifications
    rows = {r.rollup: r.rows for r in done}[rollup.name]
    hours = (datetime(2025, 10, 26), datetime(2025, 11, 5, 8))  # the whole hours the range touches
    assert rows == sum(1 for row in before if hours[0] <= row[0] < hours[1])
    assert stored(connection, rollup) == [row for row in before if hours[0] <= row[0] < hours[1]]
    [agent] = connection.execute(sa.text("SELECT min(agent_key) FROM fact_verifications")).scalars()
    touched = [
        Touched("fact_verifications", member=("agent_key", agent)),
        Touched("fact_errors", member=("actor_key", 1)),
    ]
    done = refresh_rollups(connection, REGISTRY, touched)
    keeping_agent = {name for name in verifications if "agent" in REGISTRY.rollups[name].dimensions}
    assert {r.rollup for r in done} == keeping_agent  # no rollup of errors keeps an actor
    column = [c.name for c in table.columns].index("agent_key")
    assert stored(connection, rollup) == sorted(
        {
            *(row for row in before if hours[0] <= row[0] < hours[1]),
            *(row for row in before if row[column] == agent),
        },
        key=repr,
    )
