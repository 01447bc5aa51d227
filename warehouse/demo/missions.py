"""Missions: planned whole, observed at an instant, and joined by the actions that run inside them.

A mission's fate (outcome, planned end) is drawn when it starts; what the
source shows depends on the instant it is observed at, so the same plan gives
the snapshot's running missions and, later, their completion. A few missions
are withheld from the snapshot: their actions reference them, but their row
commits only in the first ``advance`` step (an unknown mission that appears).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from warehouse.demo.batch import Batch, bucket, row_ids
from warehouse.demo.sampling import chance, choose_weighted, clip_updates, lag, lognormal
from warehouse.demo.timeline import BUSINESS, MINUTE, NEVER, Window, sample_times
from warehouse.demo.vocabulary import MISSION_OUTCOMES, MISSION_TYPES
from warehouse.demo.world import World
from warehouse.source import missions

WITHHELD_PERCENT = 2


@dataclass(frozen=True)
class MissionPlan:
    seqs: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    outcomes: np.ndarray
    types: np.ndarray
    records_end: np.ndarray
    """Whether the row gets a ``completed_at`` when it ends: failed and cancelled runs sometimes never record one."""

    def __len__(self) -> int:
        return len(self.seqs)

    def withheld(self) -> np.ndarray:
        """Missions whose row commits late; never the newest, so later ids cannot collide with them."""
        return (bucket(self.seqs) < WITHHELD_PERCENT) & (self.seqs < self.seqs.max(initial=0))


def plan_missions(rng: np.random.Generator, world: World, window: Window, first_seq: int) -> MissionPlan:
    count = world.volume("missions", BUSINESS, window)
    starts = sample_times(rng, window, count, BUSINESS.weights(window.slots(), world.anchor))
    durations = lognormal(rng, 40 * MINUTE, 1.3, count).astype(np.int64)
    ends = np.where(chance(rng, 0.02, count), NEVER, starts + durations)
    outcomes = choose_weighted(rng, MISSION_OUTCOMES, count)
    records = rng.random(count) < np.where(outcomes == "completed", 1.0, np.where(outcomes == "failed", 0.9, 0.5))
    return MissionPlan(
        seqs=np.arange(first_seq, first_seq + count, dtype=np.int64),
        starts=starts,
        ends=ends,
        outcomes=outcomes,
        types=choose_weighted(rng, MISSION_TYPES, count),
        records_end=records,
    )


def observe(rng: np.random.Generator, plan: MissionPlan, index: np.ndarray, as_of: int) -> Batch:
    """The rows of the planned missions ``index`` as the source holds them at ``as_of``."""
    starts, ends = plan.starts[index], plan.ends[index]
    finished = ends <= as_of
    size = starts.size
    updated = np.where(finished, ends, starts) + lag(rng, size)
    return Batch(
        missions,
        plan.seqs[index],
        {
            "mission_id": row_ids("missions", plan.seqs[index]),
            "mission_type": plan.types[index],
            "status": np.where(finished, plan.outcomes[index], "running"),
            "started_at": starts,
            "completed_at": np.where(finished, ends, 0),
            "updated_at": clip_updates(updated, starts, np.full(size, as_of)),
        },
        {"completed_at": ~finished | ~plan.records_end[index]},
    )


@dataclass(frozen=True)
class MissionPool:
    """Missions actions can belong to: an action joins one that is open at its creation time."""

    ids: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, plan: MissionPlan) -> MissionPool:
        return cls(row_ids("missions", plan.seqs), plan.starts, plan.ends)

    def plus(self, other: MissionPool) -> MissionPool:
        starts = np.concatenate([self.starts, other.starts])
        order = np.argsort(starts, kind="stable")
        return MissionPool(
            np.concatenate([self.ids, other.ids])[order], starts[order], np.concatenate([self.ends, other.ends])[order]
        )

    def link(self, rng: np.random.Generator, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """An open mission per time, recent ones likelier: (mission ids, whether one was found)."""
        chosen = np.full(times.size, -1, dtype=np.int64)
        if not self.starts.size:
            return np.full(times.size, "", dtype=object), chosen >= 0
        latest = np.searchsorted(self.starts, times, side="right") - 1
        for _ in range(3):
            candidate = latest - (rng.geometric(0.35, size=times.size) - 1)
            found = (chosen < 0) & (candidate >= 0) & (self.ends[np.maximum(candidate, 0)] >= times)
            chosen[found] = candidate[found]
        return self.ids[np.maximum(chosen, 0)], chosen >= 0


def snapshot_plan(world: World) -> MissionPlan:
    """The snapshot's missions; replayed by the first ``advance`` step to commit the withheld ones."""
    return plan_missions(world.stream(0, "missions"), world, world.snapshot, first_seq=1)
