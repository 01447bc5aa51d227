"""One function per event kind: a realistic row at a given moment.

Rows carry Python values (aware UTC datetimes, booleans, lists and dicts for
JSON); the writer turns them into what each source database stores.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from warehouse.demo.members import (
    ACTION_TYPES, ACTORS, AGENTS, COMPONENTS, ERROR_TYPES, FACETS, MISSION_TYPES, MODES, PRACTICES, SEVERITIES, TIER_WEIGHTS, TIERS, UNKNOWN,
)
from warehouse.demo.timeline import chance, long_tail

Row = dict[str, Any]
UNKNOWN_SHARE = 0.01


@dataclass
class Cast:
    """Who can appear in events; unknown ids appear in a small share of references."""

    rng: random.Random
    missions: list[str] = field(default_factory=list)

    def _pick(self, kind: str, known: list[str], weights: list[float] | None = None) -> str:
        if chance(self.rng, UNKNOWN_SHARE):
            return UNKNOWN[kind]
        return self.rng.choices(known, weights)[0]

    def tier(self) -> str:
        return self._pick("tier", [t[0] for t in TIERS], TIER_WEIGHTS)

    def agent(self) -> str:
        return self._pick("agent", [a[0] for a in AGENTS])

    def actor(self, kind: str | None = None) -> str:
        return self._pick("actor", [a[0] for a in ACTORS if kind is None or a[1] == kind])

    def component(self) -> str:
        return self._pick("component", [c[0] for c in COMPONENTS])

    def mission(self) -> str | None:
        if not self.missions or chance(self.rng, 0.3):
            return None
        return UNKNOWN["mission"] if chance(self.rng, UNKNOWN_SHARE) else self.rng.choice(self.missions)


def mission(rng: random.Random, key: str, at: datetime, now: datetime) -> Row:
    duration = timedelta(seconds=long_tail(rng, 1800, 1.0))
    done = at + duration
    status = "running" if done > now else rng.choices(["completed", "failed", "cancelled"], [0.8, 0.12, 0.08])[0]
    finished = status in ("completed", "failed")
    return {
        "mission_id": key, "mission_type": rng.choice(MISSION_TYPES), "status": status, "started_at": at,
        "completed_at": done if finished else None, "updated_at": done if status != "running" else at,
    }


def contract(rng: random.Random, cast: Cast, key: str, at: datetime, now: datetime) -> Row:
    duration_ms = int(long_tail(rng, 850, 1.1))
    done = at + timedelta(milliseconds=duration_ms)
    status = "pending" if done > now or chance(rng, 0.04) else rng.choices(["verified", "failed"], [0.9, 0.1])[0]
    return {
        "contract_id": key, "mission_id": cast.mission(), "action_type": rng.choice(ACTION_TYPES),
        "component_name": cast.component(), "tier_id": cast.tier(), "actor_id": cast.actor(),
        "agent_name": cast.agent() if chance(rng, 0.85) else None, "status": status,
        "rolled_back": status != "pending" and chance(rng, 0.05 if status == "verified" else 0.3),
        "confidence": None if chance(rng, 0.1) else round(rng.betavariate(8, 2), 4),
        "duration_ms": None if status == "pending" or chance(rng, 0.05) else duration_ms, "created_at": at,
        "completed_at": None if status == "pending" else done, "updated_at": at if status == "pending" else done,
    }


def error(rng: random.Random, cast: Cast, key: str, at: datetime, now: datetime) -> Row:
    resolved = at + timedelta(seconds=long_tail(rng, 600, 1.3))
    is_resolved = resolved <= now and chance(rng, 0.8)
    return {
        "event_id": key, "occurred_at": at, "component_name": cast.component(),
        "tier_id": cast.tier() if chance(rng, 0.8) else None, "agent_name": cast.agent() if chance(rng, 0.7) else None,
        "error_type": rng.choice(ERROR_TYPES), "severity": rng.choices([s for s, _ in SEVERITIES], [w for _, w in SEVERITIES])[0],
        "auto_resolved": is_resolved and chance(rng, 0.6), "resolved_at": resolved if is_resolved else None,
        "updated_at": resolved if is_resolved else at,
    }


def approval(rng: random.Random, cast: Cast, key: str, at: datetime, now: datetime) -> Row:
    sla = rng.choice([300, 900, 3600])
    resolved = at + timedelta(seconds=long_tail(rng, sla * 0.5, 1.0))
    status = "pending" if resolved > now else rng.choices(["approved", "rejected", "expired"], [0.75, 0.2, 0.05])[0]
    return {
        "approval_id": key, "requested_at": at, "resolved_at": None if status == "pending" else resolved, "status": status,
        "agent_name": cast.agent() if chance(rng, 0.9) else None,
        "approver_id": cast.actor("human") if status in ("approved", "rejected") else None,
        "tier_id": cast.tier(), "component_name": cast.component(),
        "risk_score": None if chance(rng, 0.1) else round(rng.random(), 3), "sla_seconds": sla, "contract_id": None,
        "updated_at": at if status == "pending" else resolved,
    }


def query(rng: random.Random, cast: Cast, key: str, at: datetime, users: int) -> Row:
    return {
        "query_id": key, "created_at": at, "agent_name": cast.agent(), "conversation_id": f"conv-{rng.randrange(users * 3):05d}",
        "user_id": f"user_{rng.randrange(users):05d}", "latency_ms": int(long_tail(rng, 700, 0.8)),
        "approved": None if chance(rng, 0.4) else chance(rng, 0.85), "human_edited": chance(rng, 0.12),
        "error_occurred": chance(rng, 0.03), "result_size_bytes": None if chance(rng, 0.2) else int(long_tail(rng, 4000, 1.2)),
        "cost_usd": round(long_tail(rng, 0.01, 0.7), 6), "updated_at": at + timedelta(milliseconds=rng.randrange(5000)),
    }


def feedback(rng: random.Random, cast: Cast, key: str, at: datetime) -> Row:
    def score() -> int | None:
        return None if chance(rng, 0.15) else rng.choices([1, 2, 3, 4, 5], [0.05, 0.1, 0.2, 0.35, 0.3])[0]

    annotated = at + timedelta(hours=long_tail(rng, 6, 0.8))
    return {
        "feedback_id": key, "query_id": None if chance(rng, 0.2) else f"q-{rng.randrange(10**6):06d}", "agent_name": cast.agent(),
        "conversation_id": f"conv-{rng.randrange(1000):05d}", "annotator_id": cast.actor("human"), "created_at": at,
        "annotated_at": None if chance(rng, 0.1) else annotated, "safe_to_send": None if chance(rng, 0.2) else chance(rng, 0.93),
        "clarity_score": score(), "accuracy_score": score(), "tone_score": score(),
        "labels": rng.sample(["helpful", "verbose", "wrong", "unsafe", "great", "off-topic"], rng.randrange(3)), "updated_at": at,
    }


def trace(rng: random.Random, cast: Cast, key: str, at: datetime, users: int) -> Row:
    document: dict[str, Any] = {"rules": {"fired": rng.sample(["R1", "R2", "R7", "R9"], rng.randrange(3))}}
    if not chance(rng, 0.15):
        steps = [{"kind": "lookup", "detail": "context"}]
        for _ in range(rng.randrange(4)):
            steps.append({"kind": "practice", "detail": rng.choice(PRACTICES)})
        steps.append({"kind": "reason", "detail": "weigh options"})
        document["plan"] = {"steps": steps}
    if chance(rng, 0.7):
        document["inference"] = {"rationale": ["because"]}
    return {
        "trace_id": key, "created_at": at, "user_id": f"user_{rng.randrange(users):05d}", "agent_name": cast.agent(),
        "facet": rng.choice(FACETS), "mode": rng.choice(MODES), "confidence": None if chance(rng, 0.1) else round(rng.random(), 3),
        "safety_level": rng.choices(["normal", "elevated", "critical"], [0.9, 0.08, 0.02])[0],
        "latency_ms": int(long_tail(rng, 1200, 0.9)), "trace": document, "updated_at": at,
    }
