"""Action contracts and the approval requests some of them needed.

A contract runs for a long-tailed time; a few wait hours for a human first and
a few get stuck, so pending rows exist at any instant, not just in the last
seconds. Approvals are drawn from the chunk's contracts, riskier tiers more
often, and share their tier, component and agent.
"""

from __future__ import annotations

import numpy as np

from warehouse.demo import cast
from warehouse.demo.batch import Batch, row_ids
from warehouse.demo.sampling import chance, choose_weighted, clip_updates, lag, lognormal
from warehouse.demo.scene import Scene
from warehouse.demo.timeline import DAY, HOUR, MINUTE, NEVER, SECOND
from warehouse.demo.vocabulary import ACTION_TYPES, APPROVAL_OUTCOMES
from warehouse.source import action_contracts, approval_requests

IN_MISSION_SHARE = 0.75
APPROVAL_EXPIRY = DAY


def approval_count(contracts: int) -> int:
    """One approval request per eight contracts."""
    return contracts // 8


def generate(rng: np.random.Generator, scene: Scene, times: np.ndarray, as_of: np.ndarray) -> list[Batch]:
    size = times.size
    seqs = scene.sequences.take("action_contracts", size)
    mission_ids, in_mission = scene.missions.link(rng, times)
    without_mission = ~in_mission | ~chance(rng, IN_MISSION_SHARE, size)

    runtime_ms = np.maximum(lognormal(rng, 900, 1.1, size), 1).astype(np.int64)
    waits = np.where(chance(rng, 0.06, size), lognormal(rng, 2 * HOUR, 1.4, size), 0).astype(np.int64)
    completion = np.where(chance(rng, 0.012, size), NEVER, times + waits + runtime_ms * 1000)
    done = completion <= as_of
    failed = chance(rng, 0.08, size)
    rolled_back = done & (rng.random(size) < np.where(failed, 0.22, 0.008))
    updated = np.where(done, completion, times) + lag(rng, size)
    batch = Batch(
        action_contracts,
        seqs,
        {
            "contract_id": row_ids("action_contracts", seqs),
            "mission_id": mission_ids,
            "action_type": choose_weighted(rng, ACTION_TYPES, size),
            "component_name": cast.components(rng, size),
            "tier_id": cast.tiers(rng, size),
            "actor_id": cast.triggering_actors(rng, size),
            "agent_name": cast.agents(rng, size),
            "status": np.where(done, np.where(failed, "failed", "verified"), "pending").astype(object),
            "rolled_back": rolled_back,
            "confidence": np.round(rng.beta(9, 2, size), 4),
            "duration_ms": runtime_ms,
            "created_at": times,
            "completed_at": np.where(done, completion, 0),
            "updated_at": clip_updates(updated, times, as_of),
        },
        {
            "mission_id": without_mission,
            "agent_name": chance(rng, 0.12, size),
            "confidence": chance(rng, 0.06, size),
            "duration_ms": ~done | chance(rng, 0.03, size),
            "completed_at": ~done,
        },
    )
    return [batch, _approvals(rng, scene, batch, as_of)]


def _approvals(rng: np.random.Generator, scene: Scene, contracts: Batch, as_of: np.ndarray) -> Batch:
    """Approval requests for the riskier share of a chunk's contracts, decided by humans at their own pace."""
    columns = contracts.columns
    levels = cast.lookup(columns["tier_id"], cast.TIER_LEVELS, 1)
    count = approval_count(len(contracts))
    priority = rng.random(len(contracts)) ** (1 / (0.4 + levels**2))
    picked = np.sort(np.argsort(-priority, kind="stable")[:count])
    seqs = scene.sequences.take("approval_requests", count)
    requested = columns["created_at"][picked] + rng.integers(50_000, 5 * SECOND, size=count)
    observed = as_of[picked]
    requested = np.minimum(requested, observed)

    outcome = choose_weighted(rng, APPROVAL_OUTCOMES, count)
    latency = lognormal(rng, 12 * MINUTE, 1.5, count).astype(np.int64)
    decision = requested + np.where(outcome == "expired", APPROVAL_EXPIRY, latency)
    decision = np.where(chance(rng, 0.04, count), NEVER, decision)
    decided = decision <= observed
    by_human = decided & (outcome != "expired")
    risk = np.clip(0.1 + 0.22 * levels[picked] + rng.normal(0, 0.12, count), 0, 1)
    updated = np.where(decided, decision, requested) + lag(rng, count)
    return Batch(
        approval_requests,
        seqs,
        {
            "approval_id": row_ids("approval_requests", seqs),
            "requested_at": requested,
            "resolved_at": np.where(decided, decision, 0),
            "status": np.where(decided, outcome, "pending"),
            "agent_name": columns["agent_name"][picked],
            "approver_id": cast.approvers(rng, count),
            "tier_id": columns["tier_id"][picked],
            "component_name": columns["component_name"][picked],
            "risk_score": np.round(risk, 3),
            "sla_seconds": cast.lookup(columns["tier_id"][picked], cast.APPROVAL_SLAS, 3_600).astype(np.int64),
            "contract_id": columns["contract_id"][picked],
            "updated_at": clip_updates(updated, requested, observed),
        },
        {
            # A few decisions predate resolved_at being recorded; policy auto-approvals have no approver.
            "resolved_at": ~decided | (by_human & chance(rng, 0.02, count)),
            "agent_name": contracts.nulls["agent_name"][picked],
            "approver_id": ~by_human | chance(rng, 0.04, count),
            "risk_score": chance(rng, 0.08, count),
            "contract_id": chance(rng, 0.15, count),
        },
    )
