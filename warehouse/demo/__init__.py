"""A realistic, deterministic operational database for demos, tests and benchmarks.

``generate_demo_source`` writes four weeks of platform activity before
``anchor``; each ``advance_demo_source`` step adds the next day the way a live
system would: new events, pending rows that complete, a renamed tier or a
changed agent, members that finally get registered, rows that commit late and
events that arrive days after they happened.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from warehouse.demo import events
from warehouse.demo.members import ACTORS, AGENTS, COMPONENTS, TIERS, UNKNOWN
from warehouse.demo.timeline import chance, event_time, long_tail
from warehouse.demo.writer import SourceWriter
from warehouse.etl.values import utc_timestamp

__all__ = ["advance_demo_source", "generate_demo_source"]

ANCHOR = datetime(2025, 11, 3, tzinfo=UTC)
DAYS = 28
CONTRACTS_PER_SCALE = 20_000
SHARES = {"missions": 1 / 20, "error_events": 1 / 4, "approval_requests": 1 / 8, "agent_queries": 1 / 2, "agent_feedback": 1 / 20, "agent_traces": 1 / 3}
Progress = Callable[[str, int, int], None]


def _sizes(scale: float, fraction: float = 1.0) -> dict[str, int]:
    contracts = max(1, int(CONTRACTS_PER_SCALE * scale * fraction))
    return {"action_contracts": contracts, **{name: max(1, int(contracts * share)) for name, share in SHARES.items()}}


def _events(rng: random.Random, cast: events.Cast, table: str, count: int, start: datetime, end: datetime, prefix: str, users: int) -> Iterator[dict[str, Any]]:
    for index in range(count):
        key = f"{prefix}-{index:08d}"
        at = event_time(rng, start, end)
        if table == "action_contracts":
            yield events.contract(rng, cast, key, at, end)
        elif table == "error_events":
            yield events.error(rng, cast, key, at, end)
        elif table == "approval_requests":
            yield events.approval(rng, cast, key, at, end)
        elif table == "agent_queries":
            yield events.query(rng, cast, key, at, users)
        elif table == "agent_feedback":
            yield events.feedback(rng, cast, key, at)
        else:
            yield events.trace(rng, cast, key, at, users)


def _write_period(writer: SourceWriter, rng: random.Random, sizes: dict[str, int], start: datetime, end: datetime, prefix: str, progress: Progress | None) -> dict[str, int]:
    users = max(50, sizes["agent_queries"] // 40)
    mission_ids = [f"{prefix}-mission-{i:07d}" for i in range(sizes["missions"])]
    written = {"missions": writer.insert("missions", (events.mission(rng, key, event_time(rng, start, end), end) for key in mission_ids), total=len(mission_ids), progress=progress)}
    cast = events.Cast(rng, mission_ids)
    for table, count in sizes.items():
        if table != "missions":
            written[table] = writer.insert(table, _events(rng, cast, table, count, start, end, f"{prefix}-{table.split('_')[-1]}", users), total=count, progress=progress)
    return written


def generate_demo_source(url: str, *, seed: int = 7, scale: float = 1.0, anchor: datetime | None = None, progress: Progress | None = None) -> dict[str, int]:
    """Create the source tables at ``url`` (SQLite or PostgreSQL) and write four weeks before ``anchor``."""
    anchor = anchor or ANCHOR
    start = anchor - timedelta(days=DAYS)
    rng = random.Random(f"{seed}/initial/{scale}")
    registered = start - timedelta(days=1)
    writer = SourceWriter(url)
    written = {
        "autonomy_tiers": writer.insert("autonomy_tiers", ({"tier_id": t, "tier_name": n, "tier_level": lvl, "max_risk_score": risk, "updated_at": registered} for t, n, lvl, risk in TIERS), total=len(TIERS)),
        "agents": writer.insert("agents", ({"agent_name": a, "agent_type": kind, "capabilities": caps, "sla_target_seconds": sla, "cost_per_query_usd": cost, "updated_at": registered} for a, kind, caps, sla, cost in AGENTS), total=len(AGENTS)),
        "actors": writer.insert("actors", ({"actor_id": a, "actor_type": kind, "display_name": name, "team": team, "updated_at": registered} for a, kind, name, team in ACTORS), total=len(ACTORS)),
        "components": writer.insert("components", ({"component_name": c, "kernel": k, "updated_at": registered} for c, k in COMPONENTS), total=len(COMPONENTS)),
    }
    written |= _write_period(writer, rng, _sizes(scale), start, anchor, "init", progress)
    writer.dispose()
    return written


def _history_changes(step: int, at: datetime) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(table, key column, key, new values): a tier renamed or re-risked, an agent changed, a member registered."""
    if step % 2 == 1:
        return [
            ("autonomy_tiers", "tier_id", "tier_2", {"tier_name": "Operational" + "+" * ((step + 1) // 2), "updated_at": at}),
            ("agents", "agent_name", "pilot-ops", {"agent_type": "ai" if step % 4 == 1 else "ops", "capabilities": ["deploy", "pager", f"v{step}"], "updated_at": at + timedelta(hours=2)}),
        ]
    return [
        ("autonomy_tiers", "tier_id", "tier_3", {"max_risk_score": round(0.9 + step / 100, 2), "updated_at": at}),
        ("agents", "agent_name", "hermes-support", {"agent_type": "ai" if step % 4 == 2 else "support", "updated_at": at + timedelta(hours=3)}),
    ]


def advance_demo_source(url: str, *, step: int, seed: int = 7, scale: float = 1.0, anchor: datetime | None = None, progress: Progress | None = None) -> dict[str, int]:
    """Add day ``step`` after ``anchor``; returns rows inserted or updated per table."""
    anchor = anchor or ANCHOR
    start, end = anchor + timedelta(days=step - 1), anchor + timedelta(days=step)
    rng = random.Random(f"{seed}/step/{step}/{scale}")
    writer = SourceWriter(url)
    # Earlier steps wrote rows up to `start`: rows stamped just before it commit "late".
    newest = start
    changed = _write_period(writer, rng, _sizes(scale, 1 / DAYS), start, end, f"s{step}", progress)

    pending = writer.select("SELECT contract_id, created_at FROM action_contracts WHERE status = 'pending' ORDER BY contract_id")
    resolved = []
    for contract_id, created_at in pending:
        if chance(rng, 0.6):
            created = utc_timestamp(created_at).replace(tzinfo=UTC)  # type: ignore[union-attr]
            done = max(event_time(rng, start, end), created + timedelta(seconds=1))
            status = "verified" if chance(rng, 0.85) else "failed"
            resolved.append((contract_id, {"status": status, "completed_at": done, "duration_ms": int(long_tail(rng, 2000)), "updated_at": done}))
    changed["action_contracts"] += writer.update("action_contracts", "contract_id", resolved)
    waiting = writer.select("SELECT approval_id FROM approval_requests WHERE status = 'pending' ORDER BY approval_id")
    decided = [
        (approval_id, {"status": "approved" if chance(rng, 0.8) else "rejected", "resolved_at": (at := event_time(rng, start, end)), "approver_id": "human-01", "updated_at": at})
        for (approval_id,) in waiting
        if chance(rng, 0.7)
    ]
    changed["approval_requests"] += writer.update("approval_requests", "approval_id", decided)

    for table, key, member, values in _history_changes(step, start + timedelta(hours=6)):
        changed[table] = changed.get(table, 0) + writer.update(table, key, [(member, values)])
    registered = [("agents", {"agent_name": UNKNOWN["agent"], "agent_type": "qa", "capabilities": ["shadow"], "sla_target_seconds": 60, "cost_per_query_usd": 0.02}), ("components", {"component_name": UNKNOWN["component"], "kernel": "resilience"})]
    if step <= len(registered):
        table, row = registered[step - 1]
        if not writer.select(f"SELECT 1 FROM {table} WHERE {next(iter(row))} = '{next(iter(row.values()))}'"):
            changed[table] = changed.get(table, 0) + writer.insert(table, [{**row, "updated_at": start + timedelta(hours=1)}], total=1)

    cast = events.Cast(rng)
    late_commits = [events.contract(rng, cast, f"s{step}-late-{i}", newest - timedelta(minutes=4), newest) | {"updated_at": newest - timedelta(minutes=rng.randrange(1, 5))} for i in range(5)]
    late_events = [events.error(rng, cast, f"s{step}-past-{i}", start - timedelta(days=10, hours=i), start - timedelta(days=9)) | {"updated_at": end - timedelta(minutes=i + 1)} for i in range(5)]
    changed["action_contracts"] += writer.insert("action_contracts", late_commits, total=len(late_commits))
    changed["error_events"] += writer.insert("error_events", late_events, total=len(late_events))
    writer.dispose()
    return changed
