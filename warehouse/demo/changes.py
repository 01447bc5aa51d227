"""Reference data that changes during a period: history the type-2 dimensions must keep.

Every step changes one tier (odd steps rename it, even steps move its risk
ceiling) and one agent (its type and capabilities), at an instant inside the
period; late members whose step has come are registered. Step 1 renames
``tier_2`` "Operational" to "Operational+", step 2 lowers ``tier_3``'s
``max_risk_score``; later steps rotate through the other members.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from warehouse.demo.batch import Batch
from warehouse.demo.catalog import AGENT_TYPES, CAPABILITIES, LATE_ACTORS, LATE_AGENTS, LATE_COMPONENTS
from warehouse.demo.members import actor_rows, agent_rows, component_rows
from warehouse.demo.state import SourceState
from warehouse.demo.timeline import HOUR, Window
from warehouse.source import agents, autonomy_tiers


def _during(rng: np.random.Generator, period: Window, size: int) -> np.ndarray:
    """Instants well inside the period: changes happen at work, not at the stroke of midnight."""
    return period.start + rng.integers(2 * HOUR, 22 * HOUR, size=size)


def _tier_update(step: int, tiers: list[dict[str, Any]]) -> tuple[str, str, float] | None:
    if not tiers:
        return None
    if step % 2:
        tier = tiers[(2 + (step - 1) // 2) % len(tiers)]
        name = tier["tier_name"]
        return tier["tier_id"], name[:-1] if name.endswith("+") else name + "+", tier["max_risk_score"]
    tier = tiers[(3 + (step - 2) // 2) % len(tiers)]
    delta = -0.05 if (step // 2) % 2 else 0.05
    return tier["tier_id"], tier["tier_name"], float(np.clip(round(tier["max_risk_score"] + delta, 2), 0.05, 1.0))


def tier_change(rng: np.random.Generator, step: int, state: SourceState, period: Window) -> Batch | None:
    change = _tier_update(step, state.tiers)
    if change is None:
        return None
    tier_id, name, score = change
    return Batch(
        autonomy_tiers,
        np.asarray([step]),
        {
            "tier_id": np.asarray([tier_id], dtype=object),
            "tier_name": np.asarray([name], dtype=object),
            "max_risk_score": np.asarray([score]),
            "updated_at": _during(rng, period, 1),
        },
    )


def agent_change(rng: np.random.Generator, step: int, state: SourceState, period: Window) -> Batch | None:
    """An agent is repurposed: it becomes the next agent type and learns one of that type's capabilities."""
    if not state.agents:
        return None
    agent = state.agents[(5 * step) % len(state.agents)]
    current = agent["agent_type"]
    new_type = (
        AGENT_TYPES[(AGENT_TYPES.index(current) + 1) % len(AGENT_TYPES)] if current in AGENT_TYPES else AGENT_TYPES[0]
    )
    capabilities = list(agent["capabilities"] or [])
    learned = [c for c in CAPABILITIES[new_type] if c not in capabilities][:1]
    return Batch(
        agents,
        np.asarray([step]),
        {
            "agent_name": np.asarray([agent["agent_name"]], dtype=object),
            "agent_type": np.asarray([new_type], dtype=object),
            "capabilities": np.asarray([json.dumps(capabilities + learned)], dtype=object),
            "updated_at": _during(rng, period, 1),
        },
    )


def newcomers(rng: np.random.Generator, step: int, state: SourceState, period: Window) -> list[Batch]:
    """Late members whose step has come and that are still missing: their facts stop being unknown."""
    due_agents = [a for due, a in LATE_AGENTS if due <= step and a.name not in state.registered["agents"]]
    due_actors = [a for due, a in LATE_ACTORS if due <= step and a.actor_id not in state.registered["actors"]]
    due_components = [c for due, c in LATE_COMPONENTS if due <= step and c.name not in state.registered["components"]]
    batches = [
        agent_rows(due_agents, _during(rng, period, len(due_agents))),
        actor_rows(due_actors, _during(rng, period, len(due_actors))),
        component_rows(due_components, _during(rng, period, len(due_components))),
    ]
    return [batch for batch in batches if len(batch)]
