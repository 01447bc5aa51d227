"""An independent computation of every metric of the catalog, in plain Python over raw source rows.

It follows the text of ``spec/catalog.md`` and ``spec/sources.md``, not the
warehouse or the compiler: nothing here comes from ``metrics`` or
``warehouse.etl``. Tests compare the engine's answers with these.

    snapshots = [read_snapshot(url) for each ETL run]   # the source as each run saw it
    Reference(snapshots, hash_key="k").compute("verification_success_rate", "tier.name")
    -> {"Observe": 0.75, "Assist": None, None: 0.5}

Facts are the last snapshot's rows (the source's current state). Tiers and
agents are type 2: the first version a run observed is valid for all time
before it, each later observed change from the row's ``updated_at``. Actors,
components and missions are type 1 (the last snapshot's values).

Split by concern and fact family: ``source`` (rows, members, facts),
``aggregates``, ``operations`` and ``agents`` (the metrics of each family),
``buckets`` (time attributes).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from tests.metrics.reference.agents import AGENTS
from tests.metrics.reference.aggregates import CrossMetric, FactMetric
from tests.metrics.reference.buckets import GRAINS, TIME_PARTS, time_value
from tests.metrics.reference.operations import OPERATIONS
from tests.metrics.reference.source import (
    FACTS,
    MEMBER_TABLES,
    FactSource,
    Members,
    Row,
    Snapshot,
    practices,
    read_snapshot,
)

METRICS: dict[str, FactMetric | CrossMetric] = {**OPERATIONS, **AGENTS}

__all__ = [
    "FACTS",
    "GRAINS",
    "MEMBER_TABLES",
    "METRICS",
    "TIME_PARTS",
    "Reference",
    "Row",
    "Snapshot",
    "practices",
    "read_snapshot",
]


class Reference:
    def __init__(self, snapshots: Sequence[Snapshot], *, hash_key: str) -> None:
        self.current = snapshots[-1]
        self.members = Members(snapshots)
        self._hash_key = hash_key.encode()

    def user_key(self, user_id: str) -> str:
        return hmac.new(self._hash_key, user_id.encode(), hashlib.sha256).hexdigest()

    def rows(self, fact: str, *, by_practice: bool) -> list[Row]:
        """A fact's rows; trace rows once per distinct practice (or once, practice None) when sliced by
        practice, step rows once per step."""
        rows = self.current[FACTS[fact].table]
        if fact == "practice_steps":
            return [{**row, "practice": practice} for row in rows for practice in practices(row["trace"])]
        if fact == "traces" and by_practice:  # a trace that recommends nothing has the null practice
            return [
                {**row, "practice": practice}
                for row in rows
                for practice in dict.fromkeys(practices(row["trace"]) or [None])
            ]
        return rows

    def group(self, fact: FactSource, row: Row, key: str, zone: ZoneInfo) -> Any:
        dimension, _, attribute = key.partition(".")
        if dimension == "time":
            return time_value(row[fact.time], attribute, zone)
        if dimension in fact.references:
            return self.members.attribute(dimension, attribute, row[fact.references[dimension]], row[fact.time])
        value = row[fact.values[dimension]]
        return self.user_key(value) if dimension == "user" and value is not None else value

    def compute(self, metric: str, key: str | None = None, timezone: str = "UTC") -> dict[Any, Any]:
        """``{group value: metric value}``; the single group is ``None`` without a dimension."""
        definition = METRICS[metric]
        if isinstance(definition, CrossMetric):
            return self._cross(definition, key, timezone)
        rows = self.rows(definition.fact, by_practice=key == "practice")
        if key is None:
            return {None: definition.aggregate(rows)}
        zone, fact = ZoneInfo(timezone), FACTS[definition.fact]
        groups: dict[Any, list[Row]] = defaultdict(list)
        for row in rows:
            groups[self.group(fact, row, key, zone)].append(row)
        return {value: definition.aggregate(members) for value, members in groups.items()}

    def _cross(self, definition: CrossMetric, key: str | None, timezone: str) -> dict[Any, Any]:
        numerator = self.compute(definition.numerator, key, timezone)
        denominator = self.compute(definition.denominator, key, timezone)
        return {
            value: numerator.get(value, 0) / denominator[value] if denominator.get(value) else None
            for value in numerator.keys() | denominator.keys()
        }
