"""Dimension members: surrogate keys, inferred members, type-2 history.

A fact may reference a member its reference table does not hold (yet): the
member is created *inferred*, with null attributes, so the fact is kept and
sliced under it; when the reference row arrives it fills in that same row. A
type-2 member's first version is valid for all earlier time, so facts that
came before it take its attributes too. New members get the next keys in the
order of their natural keys, so two runs over the same source allocate the
same keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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

    @property
    def current(self) -> sa.Select[Any]:
        """One row per member: its natural and surrogate key (type-2 members through their current version)."""
        table = self.table
        members = sa.select(table.c[self.natural_key], table.c[self.key])
        return members.where(table.c.is_current) if self.historical else members

    def next_keys(self, *order_by: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        """Keys for new members, numbered on from the largest key in the order of ``order_by``."""
        largest = sa.select(sa.func.coalesce(sa.func.max(self.table.c[self.key]), 0)).scalar_subquery()
        return largest + sa.func.row_number().over(order_by=list(order_by))


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

DIMENSIONS = {dimension.name: dimension for dimension in (TIER, AGENT, ACTOR, COMPONENT, MISSION)}


def _whole_history(dimension: Dimension) -> dict[str, Any]:
    if not dimension.historical:
        return {}
    return {
        "valid_from": sa.literal(schema.BEGINNING_OF_TIME, sa.DateTime),
        "valid_to": sa.literal(schema.END_OF_TIME, sa.DateTime),
        "is_current": sa.true(),
    }


def infer_members(connection: sa.Connection, dimension: Dimension, references: Iterable[sa.ColumnElement[Any]]) -> None:
    """Insert an inferred member for each natural key among ``references`` (staged columns) the dimension lacks."""
    table = dimension.table
    named = [sa.select(reference.label("natural")).where(reference.is_not(None)).distinct() for reference in references]
    new = (named[0] if len(named) == 1 else sa.union(*named)).subquery("new")
    known = sa.select(table.c[dimension.key]).where(table.c[dimension.natural_key] == new.c.natural)
    values = {
        dimension.key: dimension.next_keys(new.c.natural),
        dimension.natural_key: new.c.natural,
        **_whole_history(dimension),
        "is_inferred": sa.true(),
    }
    rows = sa.select(*(sa.cast(value, table.c[name].type).label(name) for name, value in values.items()))
    connection.execute(sa.insert(table).from_select(list(values), rows.where(~known.exists())))
