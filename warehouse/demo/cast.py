"""References from events to members, with the small share that names an unregistered member.

The ETL must keep a fact whose tier, agent, actor or component is missing from
its reference table, so every reference column gets some; late members are
registered by a later ``advance`` step, ghosts never.
"""

from __future__ import annotations

import numpy as np

from warehouse.demo.catalog import (
    ACTORS,
    AGENTS,
    COMPONENTS,
    TIERS,
    UNKNOWN_ACTORS,
    UNKNOWN_AGENTS,
    UNKNOWN_COMPONENTS,
    UNKNOWN_TIERS,
    Actor,
)
from warehouse.demo.sampling import choose, sprinkle

UNKNOWN_SHARE = 0.01

TIER_LEVELS = {tier.tier_id: tier.level for tier in TIERS}
APPROVAL_SLAS = {tier.tier_id: tier.approval_sla_seconds for tier in TIERS}
AGENT_COSTS = {agent.name: agent.cost_per_query_usd for agent in AGENTS}


def tiers(rng: np.random.Generator, size: int) -> np.ndarray:
    picked = choose(rng, [t.tier_id for t in TIERS], [t.weight for t in TIERS], size)
    return sprinkle(rng, picked, UNKNOWN_TIERS, UNKNOWN_SHARE)


def agents(rng: np.random.Generator, size: int) -> np.ndarray:
    picked = choose(rng, [a.name for a in AGENTS], [a.weight for a in AGENTS], size)
    return sprinkle(rng, picked, UNKNOWN_AGENTS, UNKNOWN_SHARE)


def components(rng: np.random.Generator, size: int, *, failing: bool = False) -> np.ndarray:
    """Components acting, or (``failing``) components raising errors, which are not the same mix."""
    weights = [c.error_weight if failing else c.weight for c in COMPONENTS]
    return sprinkle(rng, choose(rng, [c.name for c in COMPONENTS], weights, size), UNKNOWN_COMPONENTS, UNKNOWN_SHARE)


def _actors(rng: np.random.Generator, chosen: tuple[Actor, ...], size: int) -> np.ndarray:
    picked = choose(rng, [a.actor_id for a in chosen], [a.weight for a in chosen], size)
    return sprinkle(rng, picked, UNKNOWN_ACTORS, UNKNOWN_SHARE)


def triggering_actors(rng: np.random.Generator, size: int) -> np.ndarray:
    return _actors(rng, ACTORS, size)


def approvers(rng: np.random.Generator, size: int) -> np.ndarray:
    return _actors(rng, tuple(a for a in ACTORS if a.approves), size)


def annotators(rng: np.random.Generator, size: int) -> np.ndarray:
    return _actors(rng, tuple(a for a in ACTORS if a.annotates), size)


def lookup(values: np.ndarray, table: dict[str, float], default: float) -> np.ndarray:
    """A per-member number (SLA, cost, level) per row; unknown members get the default."""
    return np.fromiter((table.get(value, default) for value in values), dtype=float, count=values.size)
