"""Random requests give the same answers on DuckDB and PostgreSQL, to the last digit.

They run on the catalog dataset (every fact, DST instants, type-2 changes,
nulls and unknown members) and draw metrics of any fact, up to two dimension
attributes (time grains included) in several time zones, nested and/or/not
filters over attributes of every type, time ranges, having, order, limit and
offset. Order is total (dimension keys break ties), so rows compare as lists.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics.compiler import (
    And,
    DimensionRef,
    Filter,
    MetricCondition,
    MetricRequest,
    Not,
    Or,
    OrderBy,
    Predicate,
    TimeRange,
)
from metrics.compiler.request import HAVING_OPERATORS, TIME_PARTS
from metrics.compiler.spec import attribute_type
from metrics.model import DataType, FilterOp, TimeGrain
from metrics.registry import load_registry
from tests.metrics.catalog_data import ACTORS, AGENTS, COMPONENTS, MISSIONS, TIERS, Engines

REGISTRY = load_registry()
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "America/Santiago"]
FAMILIES = [  # metrics that can be asked together (their facts share dimensions)
    [
        m
        for m in REGISTRY.metrics
        if {f.name for f in REGISTRY.facts_of(m)} <= facts and not REGISTRY.is_time_relative(m)  # test_time_relative
    ]
    for facts in (
        {"verifications", "errors"},
        {"approvals"},
        {"queries"},
        {"traces", "practice_steps"},
        {"missions"},
        {"feedback"},
    )
]
STRINGS = [
    *TIERS,
    *AGENTS,
    *ACTORS,
    *COMPONENTS,
    *MISSIONS,
    "Observe",
    "Copilot",
    "Operations",
    "Autonomous",
    "ops",
    "sre",
    "data",
    "engineer",
    "qa",
    "ingress",
    "resilience",
    "verified",
    "failed",
    "pending",
    "approved",
    "timeout",
    "critical",
    "normal",
    "code",
    "deep",
    "tdd",
    "review",
    "pairing",
]
OPERATORS = {
    DataType.STRING: [FilterOp.EQ, FilterOp.NEQ, FilterOp.IN, FilterOp.NOT_IN, FilterOp.IS_NULL, FilterOp.LIKE],
    DataType.INTEGER: [
        FilterOp.EQ,
        FilterOp.NEQ,
        FilterOp.GT,
        FilterOp.GTE,
        FilterOp.LT,
        FilterOp.LTE,
        FilterOp.IN,
        FilterOp.NOT_IN,
        FilterOp.IS_NULL,
    ],
    DataType.FLOAT: [FilterOp.GT, FilterOp.GTE, FilterOp.LT, FilterOp.LTE, FilterOp.IS_NULL],
    DataType.BOOLEAN: [FilterOp.EQ, FilterOp.NEQ, FilterOp.IS_NULL],
    DataType.TIMESTAMP: [FilterOp.GT, FilterOp.GTE, FilterOp.LT, FilterOp.LTE, FilterOp.IS_NULL],
}
instants = st.builds(
    lambda base, minutes, offset: (base + timedelta(minutes=minutes)).replace(
        tzinfo=None if offset is None else timezone(timedelta(minutes=offset))
    ),
    st.just(datetime(2025, 10, 12)),
    st.integers(0, 31 * 24 * 60),
    st.sampled_from([None, 0, 60, 120, 330, -300]),
)


def _attributes(dimension: str) -> list[str]:
    if dimension == "time":
        return [f"time.{g.value}" for g in TimeGrain] + [f"time.{p}" for p in TIME_PARTS]
    spec = REGISTRY.dimensions[dimension]
    return [f"{dimension}.{a.name}" for a in spec.attributes] if spec.is_table else [dimension]


def _value(data_type: DataType) -> st.SearchStrategy[Any]:
    return {
        DataType.STRING: st.sampled_from(STRINGS),
        DataType.INTEGER: st.integers(0, 100),
        DataType.FLOAT: st.floats(0, 1, allow_nan=False).map(lambda v: round(v, 2)),
        DataType.BOOLEAN: st.booleans(),
        DataType.TIMESTAMP: instants,
    }[data_type]


@st.composite
def predicates(draw: st.DrawFn, attributes: list[str]) -> Predicate:
    ref = DimensionRef.parse(draw(st.sampled_from(attributes)))
    data_type = attribute_type(REGISTRY, ref)
    op = draw(st.sampled_from(OPERATORS[data_type]))
    if op is FilterOp.IS_NULL:
        value: Any = draw(st.booleans())
    elif op in (FilterOp.IN, FilterOp.NOT_IN):
        value = tuple(draw(st.lists(_value(data_type), min_size=1, max_size=3)))
    elif op is FilterOp.LIKE:
        value = draw(st.sampled_from(STRINGS))[:2] + "%"
    else:
        value = draw(_value(data_type))
    return Predicate(ref, op, value)


def filters(attributes: list[str]) -> st.SearchStrategy[Filter]:
    return st.recursive(
        predicates(attributes),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda items: And(tuple(items))),
            st.lists(inner, min_size=1, max_size=3).map(lambda items: Or(tuple(items))),
            inner.map(Not),
        ),
        max_leaves=4,
    )


@st.composite
def selections(
    draw: st.DrawFn, kept: set[str] | None = None
) -> tuple[tuple[str, ...], tuple[DimensionRef, ...], Filter | None]:
    """Metrics of one family, up to two of their attributes (of the ``kept`` dimensions only) and a filter."""
    family = draw(st.sampled_from([f for f in FAMILIES if f]))
    metrics = draw(st.lists(st.sampled_from(family), min_size=1, max_size=3, unique=True))
    allowed = set.intersection(*(REGISTRY.allowed_dimensions(m) for m in metrics))
    if kept is not None:
        allowed &= kept
    attributes = [a for d in sorted(allowed) for a in _attributes(d)]
    by = tuple(DimensionRef.parse(a) for a in draw(st.lists(st.sampled_from(attributes), max_size=2, unique=True)))
    return tuple(metrics), by, draw(st.none() | filters(attributes))


@st.composite
def requests(draw: st.DrawFn) -> MetricRequest:
    metrics, by, where = draw(selections())
    time_range = None
    if draw(st.booleans()):
        start, end = sorted(
            draw(st.lists(instants, min_size=2, max_size=2)),
            key=lambda moment: moment.replace(tzinfo=moment.tzinfo or UTC),
        )
        time_range = TimeRange(draw(st.sampled_from([start, None])), end)
    return draw(completed(metrics, by, where, time_range))


@st.composite
def completed(
    draw: st.DrawFn,
    metrics: tuple[str, ...],
    by: tuple[DimensionRef, ...],
    where: Filter | None,
    time_range: TimeRange | None,
) -> MetricRequest:
    """The request for these metrics, dimensions, filter and range, with drawn having, order, page and zone."""
    having = ()
    if draw(st.integers(0, 3)) == 0:
        op = draw(st.sampled_from(HAVING_OPERATORS))
        having = (
            MetricCondition(
                draw(st.sampled_from(metrics)),
                op,
                draw(st.booleans()) if op is FilterOp.IS_NULL else draw(st.integers(0, 40)),
            ),
        )
    fields = [*metrics, *(ref.key for ref in by)]
    order_by = tuple(
        OrderBy(name, draw(st.booleans())) for name in draw(st.lists(st.sampled_from(fields), max_size=2, unique=True))
    )
    limit = draw(st.none() | st.integers(1, 20))
    return MetricRequest(
        metrics=metrics,
        dimensions=by,
        where=where,
        time_range=time_range,
        having=having,
        order_by=order_by,
        limit=limit,
        offset=draw(st.integers(0, 5)) if limit else 0,
        timezone=draw(st.sampled_from(ZONES)),
        total_count=draw(st.booleans()),
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(request=requests())
def test_duckdb_and_postgresql_agree(engines: Engines, request: MetricRequest) -> None:
    on_duckdb, on_postgres = engines.query("duckdb", request), engines.query("postgresql", request)
    assert on_duckdb.rows == on_postgres.rows
    assert on_duckdb.total_count == on_postgres.total_count
