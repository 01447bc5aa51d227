"""How each source table lands in the warehouse: targets and row transforms.

Declared once per source table; the pipeline runs them all the same way. A
transform receives a parsed source row (UTC timestamps, booleans, JSON) and the
run's ``LoadContext`` for surrogate keys and user keys.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from warehouse import schema, source
from warehouse.etl.members import ACTOR, AGENT, COMPONENT, MISSION, TIER, Dimension, MemberKeys
from warehouse.etl.merge import Children
from warehouse.etl.values import UserKeyer

Row = dict[str, Any]


@dataclass
class LoadContext:
    keys: dict[str, MemberKeys]
    user_key: UserKeyer

    def member(self, dimension: Dimension, natural: str | None) -> int | None:
        return self.keys[dimension.name].key_for(natural)


@dataclass(frozen=True)
class Target:
    """A warehouse table upserted from the source table, keyed by the source's natural key."""

    table: sa.Table
    transform: Callable[[Row, LoadContext], Row]
    children: Children | None = None
    child_rows: Callable[[Row, Row], list[Row]] | None = None


@dataclass(frozen=True)
class SourceLoad:
    source: sa.Table
    natural_key: str
    targets: tuple[Target, ...] = ()
    history: Dimension | None = None
    """A type-2 dimension, applied version by version instead of upserted."""
    prepare: Callable[[Row], Row] = field(default=lambda row: row)


def _reference(dimension: Dimension) -> Callable[[Row, LoadContext], Row]:
    def transform(row: Row, context: LoadContext) -> Row:
        return {
            dimension.key: context.keys[dimension.name].key_for(row[dimension.natural_key], infer=False),
            dimension.natural_key: row[dimension.natural_key],
            **{attribute: row[attribute] for attribute in dimension.attributes},
            "is_inferred": False,
            "source_updated_at": row["updated_at"],
        }

    return transform


def _agent_row(row: Row) -> Row:
    return {**row, "capabilities": json.dumps(row["capabilities"])}


def _mission(row: Row, context: LoadContext) -> Row:
    return {
        "mission_id": row["mission_id"],
        "started_at": row["started_at"],
        "completed_at": row["completed_at"],
        "mission_key": context.member(MISSION, row["mission_id"]),
        "mission_type": row["mission_type"],
        "status": row["status"],
        "source_updated_at": row["updated_at"],
    }


def _verification(row: Row, context: LoadContext) -> Row:
    return {
        "contract_id": row["contract_id"],
        "created_at": row["created_at"],
        "completed_at": row["completed_at"],
        "mission_key": context.member(MISSION, row["mission_id"]),
        "component_key": context.member(COMPONENT, row["component_name"]),
        "tier_key": context.member(TIER, row["tier_id"]),
        "actor_key": context.member(ACTOR, row["actor_id"]),
        "agent_key": context.member(AGENT, row["agent_name"]),
        "action_type": row["action_type"],
        "status": row["status"],
        "rolled_back": row["rolled_back"],
        "confidence": row["confidence"],
        "duration_ms": row["duration_ms"],
        "source_updated_at": row["updated_at"],
    }


def _error(row: Row, context: LoadContext) -> Row:
    return {
        "event_id": row["event_id"],
        "occurred_at": row["occurred_at"],
        "resolved_at": row["resolved_at"],
        "component_key": context.member(COMPONENT, row["component_name"]),
        "tier_key": context.member(TIER, row["tier_id"]),
        "agent_key": context.member(AGENT, row["agent_name"]),
        "error_type": row["error_type"],
        "severity": row["severity"],
        "auto_resolved": row["auto_resolved"],
        "source_updated_at": row["updated_at"],
    }


def _approval(row: Row, context: LoadContext) -> Row:
    return {
        "approval_id": row["approval_id"],
        "requested_at": row["requested_at"],
        "resolved_at": row["resolved_at"],
        "status": row["status"],
        "agent_key": context.member(AGENT, row["agent_name"]),
        "approver_key": context.member(ACTOR, row["approver_id"]),
        "tier_key": context.member(TIER, row["tier_id"]),
        "component_key": context.member(COMPONENT, row["component_name"]),
        "risk_score": row["risk_score"],
        "sla_seconds": row["sla_seconds"],
        "contract_id": row["contract_id"],
        "source_updated_at": row["updated_at"],
    }


def _query(row: Row, context: LoadContext) -> Row:
    return {
        "query_id": row["query_id"],
        "created_at": row["created_at"],
        "agent_key": context.member(AGENT, row["agent_name"]),
        "conversation_id": row["conversation_id"],
        "user_key": context.user_key(row["user_id"]),
        "latency_ms": row["latency_ms"],
        "approved": row["approved"],
        "human_edited": row["human_edited"],
        "error_occurred": row["error_occurred"],
        "result_size_bytes": row["result_size_bytes"],
        "cost_usd": row["cost_usd"],
        "source_updated_at": row["updated_at"],
    }


def _feedback(row: Row, context: LoadContext) -> Row:
    return {
        "feedback_id": row["feedback_id"],
        "created_at": row["created_at"],
        "annotated_at": row["annotated_at"],
        "query_id": row["query_id"],
        "agent_key": context.member(AGENT, row["agent_name"]),
        "annotator_key": context.member(ACTOR, row["annotator_id"]),
        "conversation_id": row["conversation_id"],
        "safe_to_send": row["safe_to_send"],
        "clarity_score": row["clarity_score"],
        "accuracy_score": row["accuracy_score"],
        "tone_score": row["tone_score"],
        "labels": json.dumps(row["labels"]),
        "source_updated_at": row["updated_at"],
    }


def _trace(row: Row, context: LoadContext) -> Row:
    return {
        "trace_id": row["trace_id"],
        "created_at": row["created_at"],
        "user_key": context.user_key(row["user_id"]),
        "agent_key": context.member(AGENT, row["agent_name"]),
        "facet": row["facet"],
        "mode": row["mode"],
        "confidence": row["confidence"],
        "safety_level": row["safety_level"],
        "latency_ms": row["latency_ms"],
        "source_updated_at": row["updated_at"],
    }


def recommended_practices(trace: Any) -> Counter[str]:
    """Practice -> number of plan steps naming it; any missing or malformed part recommends nothing."""
    plan = trace.get("plan") if isinstance(trace, dict) else None
    steps = plan.get("steps") if isinstance(plan, dict) else None
    return Counter(
        step["detail"]
        for step in steps or ()
        if isinstance(step, dict) and step.get("kind") == "practice" and isinstance(step.get("detail"), str)
    )


def _trace_practices(row: Row, fact: Row) -> list[Row]:
    shared = {
        name: fact[name]
        for name in ("trace_id", "created_at", "agent_key", "user_key", "facet", "mode", "safety_level")
    }
    return [
        {**shared, "practice": practice, "step_count": steps}
        for practice, steps in sorted(recommended_practices(row["trace"]).items())
    ]


LOADS: tuple[SourceLoad, ...] = (
    SourceLoad(source.autonomy_tiers, "tier_id", history=TIER),
    SourceLoad(source.agents, "agent_name", history=AGENT, prepare=_agent_row),
    SourceLoad(source.actors, "actor_id", (Target(schema.dim_actor, _reference(ACTOR)),)),
    SourceLoad(source.components, "component_name", (Target(schema.dim_component, _reference(COMPONENT)),)),
    SourceLoad(
        source.missions,
        "mission_id",
        (Target(schema.dim_mission, _reference(MISSION)), Target(schema.fact_missions, _mission)),
    ),
    SourceLoad(source.action_contracts, "contract_id", (Target(schema.fact_verifications, _verification),)),
    SourceLoad(source.error_events, "event_id", (Target(schema.fact_errors, _error),)),
    SourceLoad(source.approval_requests, "approval_id", (Target(schema.fact_approvals, _approval),)),
    SourceLoad(source.agent_queries, "query_id", (Target(schema.fact_queries, _query),)),
    SourceLoad(source.agent_feedback, "feedback_id", (Target(schema.fact_feedback, _feedback),)),
    SourceLoad(
        source.agent_traces,
        "trace_id",
        (
            Target(
                schema.fact_traces,
                _trace,
                children=Children(schema.bridge_trace_practices, "trace_id"),
                child_rows=_trace_practices,
            ),
        ),
    ),
)
"""In load order: members before the events that reference them."""
