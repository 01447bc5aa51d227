"""Reference-table rows from catalog members, stamped with when they were registered or changed."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from warehouse.demo.batch import Batch
from warehouse.demo.catalog import ACTORS, AGENTS, COMPONENTS, TIERS, Actor, Agent, Component, Tier
from warehouse.demo.timeline import DAY
from warehouse.demo.world import World
from warehouse.source import actors, agents, autonomy_tiers, components


def _objects(values: Sequence[object]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def tier_rows(tiers: Sequence[Tier], updated_at: np.ndarray) -> Batch:
    return Batch(
        autonomy_tiers,
        np.arange(1, len(tiers) + 1),
        {
            "tier_id": _objects([t.tier_id for t in tiers]),
            "tier_name": _objects([t.name for t in tiers]),
            "tier_level": np.asarray([t.level for t in tiers], dtype=np.int64),
            "max_risk_score": np.asarray([t.max_risk_score for t in tiers]),
            "updated_at": updated_at,
        },
    )


def agent_rows(members: Sequence[Agent], updated_at: np.ndarray) -> Batch:
    return Batch(
        agents,
        np.arange(1, len(members) + 1),
        {
            "agent_name": _objects([a.name for a in members]),
            "agent_type": _objects([a.agent_type for a in members]),
            "capabilities": _objects([json.dumps(list(a.capabilities)) for a in members]),
            "sla_target_seconds": np.asarray([a.sla_target_seconds for a in members], dtype=np.int64),
            "cost_per_query_usd": np.asarray([a.cost_per_query_usd for a in members]),
            "updated_at": updated_at,
        },
    )


def actor_rows(members: Sequence[Actor], updated_at: np.ndarray) -> Batch:
    return Batch(
        actors,
        np.arange(1, len(members) + 1),
        {
            "actor_id": _objects([a.actor_id for a in members]),
            "actor_type": _objects([a.actor_type for a in members]),
            "display_name": _objects([a.display_name for a in members]),
            "team": _objects([a.team for a in members]),
            "updated_at": updated_at,
        },
        {"team": np.asarray([a.team is None for a in members], dtype=bool)},
    )


def component_rows(members: Sequence[Component], updated_at: np.ndarray) -> Batch:
    return Batch(
        components,
        np.arange(1, len(members) + 1),
        {
            "component_name": _objects([c.name for c in members]),
            "kernel": _objects([c.kernel for c in members]),
            "updated_at": updated_at,
        },
    )


def registered_members(world: World) -> list[Batch]:
    """The reference tables of the snapshot: members registered weeks to months before it starts.

    Two agents were edited during the snapshot window: the source only shows
    their current version, stamped with that edit.
    """
    rng = world.stream(0, "members")
    start = world.snapshot.start

    def registered(count: int) -> np.ndarray:
        return start - rng.integers(1 * DAY, 120 * DAY, size=count)

    agent_times = registered(len(AGENTS))
    agent_times[[2, 7]] = start + rng.integers(3 * DAY, 20 * DAY, size=2)
    return [
        tier_rows(TIERS, registered(len(TIERS))),
        agent_rows(AGENTS, agent_times),
        actor_rows(ACTORS, registered(len(ACTORS))),
        component_rows(COMPONENTS, registered(len(COMPONENTS))),
    ]
