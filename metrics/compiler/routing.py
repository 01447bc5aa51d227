"""Exact routing: for each fact aggregate of a plan, the smallest rollup that gives the same answer, or the first
reason none can (which ``explain`` prints).

A rollup answers an aggregate exactly when
- it stores every measure (count distinct and percentiles are never stored: they do not re-aggregate);
- it keeps every dimension the request groups or filters by (an attribute of a table dimension is joined back
  from the member key and version the rollup keeps);
- each time bucket or time attribute of the request, in its zone, is a union of the rollup's UTC buckets: an
  hourly rollup serves days, weeks and months of every zone whose offsets are whole hours and change on whole
  hours (``timezones.steady_within``, checked from 1970 to 2100: event times outside that span, if any, are read
  from the fact table), a daily one serves UTC only.
Time bounds off the rollup's bucket edges are no obstacle: the ragged ends are read from the fact table and
combined with the rollup's rows before aggregating. Among the rollups that can, the plan takes one without
ragged ends if there is one, then the one with the fewest kept dimensions, then the coarsest grain.
Time-relative metrics (windows) always read the fact table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from metrics.compiler.plan import FactAggregate, QueryPlan, Scan
from metrics.compiler.request import DimensionRef
from metrics.compiler.rollup_parts import PARTS, stored_measures
from metrics.compiler.rollup_tables import bucket_ceiling, bucket_floor
from metrics.compiler.spec import predicates
from metrics.model import Rollup, TimeGrain
from metrics.registry import TIME, Registry
from metrics.timezones import CHECKED_FROM, CHECKED_TO, steady_within

OFF = Scan(reason="rollups are off for this request")
_SECONDS = {TimeGrain.MINUTE: 60, TimeGrain.HOUR: 3600, TimeGrain.DAY: 86_400}
_ORDER = list(TimeGrain)
_PART_GRAINS = {"hour_of_day": TimeGrain.HOUR, "day_of_week": TimeGrain.DAY, "is_weekend": TimeGrain.DAY}


def route(plan: QueryPlan, registry: Registry, built: frozenset[str]) -> QueryPlan:
    """The plan with each fact aggregate's scan decided, among the rollups ``built`` (current in the warehouse)."""
    aggregates = tuple(
        replace(aggregate, scan=_scan(plan, aggregate, registry, built)) for aggregate in plan.aggregates
    )
    return replace(plan, aggregates=aggregates)


def without_rollups(plan: QueryPlan) -> QueryPlan:
    return replace(plan, aggregates=tuple(replace(aggregate, scan=OFF) for aggregate in plan.aggregates))


@dataclass(frozen=True)
class _Candidate:
    rollup: Rollup
    low: datetime | None
    high: datetime | None
    ragged: tuple[tuple[datetime | None, datetime | None], ...]

    def size(self) -> tuple[bool, int, int, str]:
        return bool(self.ragged), len(self.rollup.dimensions), -_SECONDS[self.rollup.grain], self.rollup.name


def _scan(plan: QueryPlan, aggregate: FactAggregate, registry: Registry, built: frozenset[str]) -> Scan:
    fact = aggregate.fact
    for name, measure in aggregate.measures:
        if measure.aggregation not in PARTS:
            return Scan(reason=f"{name} is not additive ({measure.aggregation.value})")
    rollups = [rollup for rollup in registry.rollups.values() if rollup.fact == fact]
    if not rollups:
        return Scan(reason=f"no rollup of {fact} is declared")
    rollups = [rollup for rollup in rollups if rollup.name in built]
    if not rollups:
        return Scan(reason=f"no rollup of {fact} is built and current in the warehouse; the ETL builds them")
    for name, measure in aggregate.measures:
        rollups = [r for r in rollups if measure in stored_measures(r, registry).values()]
        if not rollups:
            return Scan(reason=f"{name} is not stored in any rollup of {fact}")
    refs = list({ref.key: ref for ref in _refs(plan)}.values())
    for ref in (ref for ref in refs if ref.dimension != TIME):
        rollups = [r for r in rollups if ref.dimension in r.dimensions]
        if not rollups:
            return Scan(reason=f"dimension {ref.key} is not in any rollup of {fact}")
    zoned = plan.timezone != "UTC" and any(ref.dimension == TIME for ref in refs)
    for ref in (ref for ref in refs if ref.dimension == TIME):
        finest = min((r.grain for r in rollups), key=_ORDER.index)
        rollups = [r for r in rollups if _serves(r.grain, ref, plan.timezone)]
        if not rollups:
            return Scan(reason=_misaligned(ref, finest, plan.timezone))
    candidates = [c for c in (_bounded(r, plan, zoned) for r in rollups) if c is not None]
    if not candidates:
        return Scan(reason=f"the time range [{plan.start}, {plan.end}) holds no whole bucket of a rollup of {fact}")
    best = min(candidates, key=_Candidate.size)
    return Scan(best.rollup.name, "", best.low, best.high, best.ragged)


def _refs(plan: QueryPlan) -> Iterator[DimensionRef]:
    yield from plan.dimensions
    yield from (predicate.ref for predicate in predicates(plan.where))


def _serves(grain: TimeGrain, ref: DimensionRef, timezone: str) -> bool:
    """Whether every UTC bucket of ``grain`` lies in one value of the time attribute ``ref`` in the zone."""
    wanted = ref.grain if ref.grain is not None else _PART_GRAINS[str(ref.attribute)]
    return _ORDER.index(wanted) >= _ORDER.index(grain) and steady_within(timezone, _SECONDS[grain])


def _misaligned(ref: DimensionRef, grain: TimeGrain, timezone: str) -> str:
    if ref.grain is not None:
        return f"time bucket {ref.grain.value} in {timezone} is not a union of {grain.value} buckets in UTC"
    return f"{ref.key} in {timezone} is not constant within {grain.value} buckets in UTC"


def _bounded(rollup: Rollup, plan: QueryPlan, zoned: bool) -> _Candidate | None:
    """The event times the rollup reads (whole buckets of the range) and the ragged ends the fact table reads."""
    low = None if plan.start is None else bucket_ceiling(plan.start, rollup.grain)
    high = None if plan.end is None else bucket_floor(plan.end, rollup.grain)
    if zoned:  # the zone's offsets are known to divide the buckets within the checked span only
        low = CHECKED_FROM if low is None else max(low, CHECKED_FROM)
        high = CHECKED_TO if high is None else min(high, CHECKED_TO)
    if low is not None and high is not None and low >= high:
        return None
    ragged = tuple(
        (start, end)
        for start, end in ((plan.start, low), (high, plan.end))
        if start != end and (start is None or end is None or start < end)
    )
    return _Candidate(rollup, low, high, ragged)
