"""Every user mistake is a typed error that says what to change, raised before any SQL exists."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from metrics.compiler import (
    And,
    DimensionRef,
    MetricCondition,
    MetricRequest,
    Not,
    Or,
    OrderBy,
    Predicate,
    TimeRange,
    compile_query,
)
from metrics.errors import (
    InvalidDimension,
    InvalidFilter,
    InvalidRequest,
    LimitExceeded,
    QueryError,
    UnknownDimension,
    UnknownMetric,
)
from metrics.model import FilterOp
from metrics.registry import Registry, load_registry

REGISTRY: Registry = load_registry()


def _request(*metrics: str, by: tuple[str, ...] = (), **options: object) -> MetricRequest:
    return MetricRequest(tuple(metrics), tuple(DimensionRef.parse(d) for d in by), **options)  # type: ignore[arg-type]


def _where(key: str, op: FilterOp, value: object) -> Predicate:
    return Predicate(DimensionRef.parse(key), op, value)


@pytest.mark.parametrize(
    ("request_", "error", "message", "code"),
    [
        (_request("verification_cnt"), UnknownMetric, "did you mean 'verification_count'", "UNKNOWN_FIELD"),
        (
            _request("verification_count", by=("tier.nam",)),
            UnknownDimension,
            "did you mean 'tier.name'",
            "UNKNOWN_FIELD",
        ),
        (_request("verification_count", by=("tiers.name",)), UnknownDimension, "did you mean 'tier'", "UNKNOWN_FIELD"),
        (
            _request("query_count", by=("tier.name",)),
            InvalidDimension,
            "metric 'query_count' cannot be sliced or filtered by 'tier'; its dimensions are: agent, time, user",
            "INVALID_DIMENSION",
        ),
        (
            _request("query_count", where=_where("component.kernel", FilterOp.EQ, "core")),
            InvalidDimension,
            "'query_count' cannot be sliced or filtered by 'component'",
            "INVALID_DIMENSION",
        ),
        (
            _request("verification_count", "error_count", by=("actor.team",)),
            InvalidDimension,
            "metric 'error_count' cannot be sliced or filtered by 'actor'",
            "INVALID_DIMENSION",
        ),
        (
            _request("errors_per_verification", by=("mission.id",)),
            InvalidDimension,
            "'errors_per_verification' cannot be sliced or filtered by 'mission'",
            "INVALID_DIMENSION",
        ),
        (
            _request("error_count", where=_where("tier.level", FilterOp.EQ, "two")),
            InvalidFilter,
            "'two' is not an integer value",
            "INVALID_FILTER",
        ),
        (
            _request("error_count", where=_where("tier.level", FilterOp.LIKE, "2%")),
            InvalidFilter,
            "like applies to strings only",
            "INVALID_FILTER",
        ),
        (
            _request("error_count", where=_where("tier.name", FilterOp.GT, "a")),
            InvalidFilter,
            "applies to numbers and times",
            "INVALID_FILTER",
        ),
        (
            _request("error_count", where=_where("tier.name", FilterOp.IN, "Observe")),
            InvalidFilter,
            "takes a list",
            "INVALID_FILTER",
        ),
        (
            _request("error_count", where=_where("tier.name", FilterOp.IS_NULL, "yes")),
            InvalidFilter,
            "isNull takes true or false",
            "INVALID_FILTER",
        ),
        (
            _request("error_count", timezone="Mars/Olympus"),
            InvalidRequest,
            "unknown time zone 'Mars/Olympus'",
            "INVALID_ARGUMENT",
        ),
        (
            _request("error_count", order_by=(OrderBy("tier.name"),)),
            InvalidRequest,
            "cannot order by 'tier.name'",
            "INVALID_ARGUMENT",
        ),
        (
            _request("error_count", having=(MetricCondition("approval_count", FilterOp.GT, 1),)),
            InvalidFilter,
            "not selected",
            "INVALID_FILTER",
        ),
        (_request("error_count", limit=10_001), LimitExceeded, "exceeds the maximum of 10000", "LIMIT_EXCEEDED"),
        (_request("error_count", limit=-1), InvalidRequest, "must not be negative", "INVALID_ARGUMENT"),
        (_request(), InvalidRequest, "at least one metric", "INVALID_ARGUMENT"),
        (_request("error_count", "error_count"), InvalidRequest, "selected twice", "INVALID_ARGUMENT"),
        (
            _request(
                "error_count", time_range=TimeRange(datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
            ),
            InvalidFilter,
            "from is after to",
            "INVALID_FILTER",
        ),
    ],
)
def test_request_errors(request_: MetricRequest, error: type[QueryError], message: str, code: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
        compile_query(request_, REGISTRY, max_limit=10_000)
    assert raised.value.code == code


def test_an_unknown_time_grain_is_an_unknown_field() -> None:
    with pytest.raises(
        UnknownDimension,
        match=r"unknown dimension attribute 'time\.hours' \(did you mean 'time\.hour'\?\); time needs a grain",
    ) as raised:
        DimensionRef.parse("time.hours")
    assert raised.value.code == "UNKNOWN_FIELD"


def test_nested_filter_values_are_all_checked() -> None:
    where = And(
        (_where("tier.name", FilterOp.EQ, "Observe"), Not(_where("agent.sla_target_seconds", FilterOp.GT, "slow")))
    )
    with pytest.raises(InvalidFilter, match=r"filter on agent\.sla_target_seconds: 'slow' is not an integer value"):
        compile_query(_request("error_count", where=where), REGISTRY)


def _nested_not(depth: int) -> Predicate | Not:
    where: Predicate | Not = _where("tier.name", FilterOp.EQ, "Observe")
    for _ in range(depth):
        where = Not(where)
    return where


def _rejection(request_: MetricRequest) -> QueryError:
    with pytest.raises(QueryError) as raised:
        compile_query(request_, REGISTRY, max_limit=10_000)
    return raised.value


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (_request("error_count", where=_nested_not(17)), "LIMIT_EXCEEDED", "more than 16 levels deep"),
        (_request("error_count", where=And((_nested_not(16), Or((_nested_not(16),))))), "LIMIT_EXCEEDED", "16 levels"),
        (_request("error_count", where=_nested_not(100_000)), "LIMIT_EXCEEDED", "more than 16 levels deep"),
        (
            _request("error_count", where=_where("tier.name", FilterOp.NOT_IN, tuple(map(str, range(10_001))))),
            "LIMIT_EXCEEDED",
            "the filters hold 10,001 values, more than the maximum of 10,000",
        ),
        (
            _request("error_count", where=_where("tier.name", FilterOp.EQ, "a\x00b")),
            "INVALID_FILTER",
            r"filter on tier.name: 'a\x00b' holds a NUL character",
        ),
        (
            _request("error_count", where=_where("tier.name", FilterOp.IN, ("ok", "\ud800"))),
            "INVALID_FILTER",
            r"filter on tier.name: '\ud800' holds a lone surrogate",
        ),
        (
            _request("error_count", where=_where("tier.name", FilterOp.LIKE, "abc\\")),
            "INVALID_FILTER",
            "the like pattern 'abc\\\\' ends in the escape character",
        ),
        (
            _request("error_count", where=_where("tier.level", FilterOp.EQ, 2**63)),
            "INVALID_FILTER",
            "9223372036854775808 is outside the 64-bit integer range",
        ),
        (
            _request(
                "error_count",
                time_range=TimeRange(datetime.fromisoformat("0001-01-01T00:30:00+01:00"), None),
            ),
            "INVALID_FILTER",
            "time range from: 0001-01-01T00:30:00+01:00 is out of range",
        ),
        (
            _request(
                "error_count",
                time_range=TimeRange(None, datetime.fromisoformat("9999-12-31T23:00:00-02:00")),
            ),
            "INVALID_FILTER",
            "time range to: 9999-12-31T23:00:00-02:00 is out of range",
        ),
    ],
)
def test_values_a_backend_would_fail_on_are_refused_alike(request_: MetricRequest, code: str, message: str) -> None:
    error = _rejection(request_)
    assert error.code == code and message in str(error), str(error)


@pytest.mark.parametrize("pattern", ["abc\\\\", "a\\%", "a\\_b", "%"])
def test_like_patterns_that_end_in_an_escaped_character_compile(pattern: str) -> None:
    compile_query(_request("error_count", where=_where("tier.name", FilterOp.LIKE, pattern)), REGISTRY)


def test_filters_at_the_limits_compile() -> None:
    values = tuple(map(str, range(9_999)))  # and the one of the nested predicate
    compile_query(
        _request("error_count", where=And((_nested_not(15), _where("tier.name", FilterOp.IN, values)))), REGISTRY
    )
