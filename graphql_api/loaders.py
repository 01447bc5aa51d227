"""DataLoader batch functions: N ``metrics`` fields or N members cost one query per group, not N.

``metrics`` fields are merged into one request (the union of their metrics)
only when merging cannot change any field's answer: the same arguments, the
same selected dimensions and the same set of facts. A merged query
full-outer-joins its facts, so a field over other facts would gain the other
facts' dimension members as extra rows, and with them a different
``totalCount``, order and page. Members of a dimension asking for the same
metrics are answered by one query grouped by the member's identifier.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from graphql_api.types import Row
from metrics.compiler import And, DimensionRef, Filter, MetricRequest, Predicate, TimeRange
from metrics.engine import MetricsEngine
from metrics.errors import MetricsError
from metrics.model import FilterOp
from metrics.policy import Scope
from metrics.registry import Registry
from metrics.results import QueryResult


def merge_key(registry: Registry, request: MetricRequest) -> tuple[MetricRequest, frozenset[str]]:
    """What two requests must share to be answered by one query: everything but the metrics (and whether
    to count the rows: the merged query counts them if any asks), and their facts."""
    facts = frozenset(
        fact.name for metric in request.metrics if metric in registry.metrics for fact in registry.facts_of(metric)
    )
    return replace(request, metrics=(), total_count=False), facts


async def load_metrics(engine: MetricsEngine, requests: Sequence[MetricRequest]) -> list[QueryResult | BaseException]:
    keys = [merge_key(engine.registry, request) for request in requests]
    groups: dict[tuple[MetricRequest, frozenset[str]], list[str]] = {}
    counted: set[tuple[MetricRequest, frozenset[str]]] = set()
    for key, request in zip(keys, requests, strict=True):
        metrics = groups.setdefault(key, [])
        metrics.extend(m for m in request.metrics if m not in metrics)
        if request.total_count:
            counted.add(key)
    merged = list(groups)
    outcomes = await asyncio.gather(
        *(
            engine.query(replace(shape, metrics=tuple(groups[(shape, facts)]), total_count=(shape, facts) in counted))
            for shape, facts in merged
        ),
        return_exceptions=True,
    )
    results = dict(zip(merged, outcomes, strict=True))
    # An exception value fails only the keys that asked for it.
    return [results[key] for key in keys]


@dataclass(frozen=True)
class MemberKey:
    identifier: DimensionRef
    member: object
    metrics: tuple[str, ...]
    where: Filter | None
    time_range: TimeRange | None
    timezone: str
    scope: Scope | None = None


def member_requests(keys: Sequence[MemberKey]) -> dict[MemberKey, MetricRequest]:
    """One request per shape (the keys but their member): its metrics grouped by the identifier, for its members."""
    groups: dict[MemberKey, list[object]] = {}
    for key in keys:
        groups.setdefault(replace(key, member=None), []).append(key.member)
    requests = {}
    for shape, members in groups.items():
        among = Predicate(shape.identifier, FilterOp.IN, tuple(dict.fromkeys(members)))
        requests[shape] = MetricRequest(
            metrics=shape.metrics,
            dimensions=(shape.identifier,),
            where=among if shape.where is None else And((among, shape.where)),
            time_range=shape.time_range,
            timezone=shape.timezone,
            limit=len(members),
            scope=shape.scope,
        )
    return requests


async def load_member_metrics(
    engine: MetricsEngine, keys: Sequence[MemberKey], answered: Callable[[bool | None], None]
) -> list[Row | Exception | None]:
    """``answered`` is told of each query's ``QueryResult.from_cache``."""
    by_group: dict[MemberKey, dict[object, Row] | Exception] = {}
    for shape, request in member_requests(keys).items():
        try:
            result = await engine.query(request)
        except MetricsError as error:
            by_group[shape] = error
            continue
        answered(result.from_cache)
        by_group[shape] = {record[shape.identifier.key]: Row(record) for record in result.records()}
    answers: list[Row | Exception | None] = []
    for key in keys:
        found = by_group[replace(key, member=None)]
        answers.append(found if isinstance(found, Exception) else found.get(key.member, Row({})))
    return answers
