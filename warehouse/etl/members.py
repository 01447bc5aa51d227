"""Dimension members: surrogate keys, inferred members, type-2 history.

A fact may reference a member its reference table does not hold (yet): the
member is created *inferred*, with null attributes, so the fact is kept and
sliced under it; when the reference row arrives it fills in that same row. A
type-2 member's first version is valid for all earlier time, so facts that
came before it take its attributes too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from warehouse import schema


@dataclass(frozen=True)
class Dimension:
    name: str
    table: sa.Table
    key: str
    natural_key: str
    attributes: tuple[str, ...]
    historical: bool


TIER = Dimension("tier", schema.dim_tier, "tier_key", "tier_id", ("tier_name", "tier_level", "max_risk_score"), True)
AGENT = Dimension(
    "agent",
    schema.dim_agent,
    "agent_key",
    "agent_name",
    ("agent_type", "capabilities", "sla_target_seconds", "cost_per_query_usd"),
    True,
)
ACTOR = Dimension("actor", schema.dim_actor, "actor_key", "actor_id", ("actor_type", "display_name", "team"), False)
COMPONENT = Dimension("component", schema.dim_component, "component_key", "component_name", ("kernel",), False)
MISSION = Dimension("mission", schema.dim_mission, "mission_key", "mission_id", ("mission_type", "status"), False)

DIMENSIONS = (TIER, AGENT, ACTOR, COMPONENT, MISSION)


class MemberKeys:
    """Natural key -> surrogate key for one dimension, allocating keys for members not seen before."""

    def __init__(self, connection: sa.Connection, dimension: Dimension) -> None:
        self.dimension = dimension
        table = dimension.table
        rows = connection.execute(sa.select(table.c[dimension.natural_key], table.c[dimension.key]).distinct())
        self._keys: dict[str, int] = dict(tuple(row) for row in rows)
        self._next = max(self._keys.values(), default=0) + 1
        self._inferred: list[str] = []

    def key_for(self, natural: str | None, *, infer: bool = True) -> int | None:
        """The member's key; an unknown member gets a new key and, if ``infer``, an inferred row at the next flush."""
        if natural is None:
            return None
        key = self._keys.get(natural)
        if key is None:
            key = self._keys[natural] = self._next
            self._next += 1
            if infer:
                self._inferred.append(natural)
        return key

    def flush(self, connection: sa.Connection) -> None:
        """Insert the inferred members allocated since the last flush."""
        if not self._inferred:
            return
        dimension = self.dimension
        history = (
            {"valid_from": schema.BEGINNING_OF_TIME, "valid_to": schema.END_OF_TIME, "is_current": True}
            if dimension.historical
            else {}
        )
        rows = [
            {
                dimension.key: self._keys[natural],
                dimension.natural_key: natural,
                **{attribute: None for attribute in dimension.attributes},
                **history,
                "is_inferred": True,
                "source_updated_at": None,
            }
            for natural in self._inferred
        ]
        connection.execute(sa.insert(dimension.table), rows)
        self._inferred.clear()


def apply_history(
    connection: sa.Connection, dimension: Dimension, keys: MemberKeys, rows: list[dict[str, Any]]
) -> tuple[int, int]:
    """Apply source rows of a type-2 dimension; returns (members inserted, members updated).

    A changed attribute closes the current version at the source row's
    ``updated_at`` and opens a new one there. Rows no newer than what the
    warehouse holds (the overlap re-reads them) change nothing.
    """
    table = dimension.table
    current = {
        row[dimension.natural_key]: row
        for row in connection.execute(sa.select(table).where(table.c.is_current)).mappings()
    }
    inserted = updated = 0
    for row in sorted(rows, key=lambda r: r["updated_at"]):
        natural = row[dimension.natural_key]
        changed_at: datetime = row["updated_at"]
        attributes = {attribute: row[attribute] for attribute in dimension.attributes}
        version = current.get(natural)
        this_version = (table.c[dimension.key] == keys.key_for(natural, infer=False)) & (table.c.is_current)
        if version is None:
            new_version = {
                dimension.key: keys.key_for(natural, infer=False),
                dimension.natural_key: natural,
                **attributes,
                "valid_from": schema.BEGINNING_OF_TIME,
                "valid_to": schema.END_OF_TIME,
                "is_current": True,
                "is_inferred": False,
                "source_updated_at": changed_at,
            }
            connection.execute(sa.insert(table), new_version)
            inserted += 1
        elif version["is_inferred"]:
            new_version = {**version, **attributes, "is_inferred": False, "source_updated_at": changed_at}
            connection.execute(sa.update(table).where(this_version).values(new_version))
            updated += 1
        elif changed_at <= version["source_updated_at"]:
            continue
        elif all(version[attribute] == value for attribute, value in attributes.items()):
            new_version = {**version, "source_updated_at": changed_at}
            connection.execute(sa.update(table).where(this_version).values(source_updated_at=changed_at))
            updated += 1
        else:
            connection.execute(sa.update(table).where(this_version).values(valid_to=changed_at, is_current=False))
            new_version = {**version, **attributes, "valid_from": changed_at, "source_updated_at": changed_at}
            connection.execute(sa.insert(table), new_version)
            updated += 1
        current[natural] = new_version
    return inserted, updated
