"""Rows that change state during a period: contracts complete, approvals get decided, errors get fixed, missions end.

Each is an UPDATE of the open row with a new ``updated_at`` inside the period,
after the moment it happened: the ETL must then show the new state, never a
second copy. Not every open row moves in one period, so some stay open for days.
"""

from __future__ import annotations

import numpy as np

from warehouse.demo import cast
from warehouse.demo.batch import Batch
from warehouse.demo.missions import MissionPool
from warehouse.demo.sampling import chance, choose_weighted, lag, lognormal, spread
from warehouse.demo.state import Open
from warehouse.demo.timeline import DAY, NEVER, SECOND, Window
from warehouse.demo.vocabulary import MISSION_OUTCOMES
from warehouse.source import action_contracts, approval_requests, error_events, missions


def _moment(rng: np.random.Generator, rows: Open, period: Window, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Which open rows change this period, and when: after the period starts and after the row's own start."""
    moves = np.flatnonzero(chance(rng, share, len(rows.ids)))
    earliest = np.maximum(rows.since[moves] + SECOND, period.start)
    return moves, spread(rng, earliest, period.end, moves.size)


def _stamped(rng: np.random.Generator, at: np.ndarray, period: Window) -> np.ndarray:
    return np.minimum(at + lag(rng, at.size), period.end - 1)


def _ids(rows: Open, moves: np.ndarray) -> np.ndarray:
    return np.asarray(rows.ids, dtype=object)[moves]


def complete_contracts(rng: np.random.Generator, pending: Open, period: Window) -> Batch:
    moves, at = _moment(rng, pending, period, 0.6)
    size = moves.size
    failed = chance(rng, 0.12, size)
    return Batch(
        action_contracts,
        pending.keys[moves],
        {
            "contract_id": _ids(pending, moves),
            "status": np.where(failed, "failed", "verified").astype(object),
            "rolled_back": rng.random(size) < np.where(failed, 0.22, 0.008),
            "duration_ms": np.maximum(lognormal(rng, 900, 1.1, size), 1).astype(np.int64),
            "completed_at": at,
            "updated_at": _stamped(rng, at, period),
        },
        {"duration_ms": chance(rng, 0.03, size)},
    )


def decide_approvals(rng: np.random.Generator, pending: Open, period: Window) -> Batch:
    """Requests older than a day mostly expire; the rest are approved or rejected by a person."""
    moves, at = _moment(rng, pending, period, 0.75)
    size = moves.size
    stale = at - pending.since[moves] > DAY
    expired = stale & chance(rng, 0.7, size)
    approved = chance(rng, 0.82, size)
    return Batch(
        approval_requests,
        pending.keys[moves],
        {
            "approval_id": _ids(pending, moves),
            "status": np.where(expired, "expired", np.where(approved, "approved", "rejected")).astype(object),
            "resolved_at": at,
            "approver_id": cast.approvers(rng, size),
            "updated_at": _stamped(rng, at, period),
        },
        {"approver_id": expired},
    )


def resolve_errors(rng: np.random.Generator, unresolved: Open, period: Window) -> Batch:
    moves, at = _moment(rng, unresolved, period, 0.4)
    return Batch(
        error_events,
        unresolved.keys[moves],
        {
            "event_id": _ids(unresolved, moves),
            "auto_resolved": chance(rng, 0.1, moves.size),
            "resolved_at": at,
            "updated_at": _stamped(rng, at, period),
        },
    )


def end_missions(rng: np.random.Generator, running: Open, period: Window) -> tuple[Batch, MissionPool]:
    """The missions that end this period, and all running ones as missions new actions can still join."""
    moves, at = _moment(rng, running, period, 0.7)
    size = moves.size
    outcome = choose_weighted(rng, MISSION_OUTCOMES, size)
    recorded = rng.random(size) < np.where(outcome == "completed", 1.0, np.where(outcome == "failed", 0.9, 0.5))
    ends = np.full(len(running.ids), NEVER, dtype=np.int64)
    ends[moves] = at
    ended = Batch(
        missions,
        running.keys[moves],
        {
            "mission_id": _ids(running, moves),
            "status": outcome,
            "completed_at": at,
            "updated_at": _stamped(rng, at, period),
        },
        {"completed_at": ~recorded},
    )
    order = np.argsort(running.since, kind="stable")
    pool = MissionPool(np.asarray(running.ids, dtype=object)[order], running.since[order], ends[order])
    return ended, pool
