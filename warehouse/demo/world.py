"""The simulation's fixed settings: seed, scale, anchor, and what follows from them.

Every random stream is derived from (seed, step, stream name), so each table
and each step draws independently: changing how one table is generated never
shifts the values of another, and a step can be replayed alone.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import numpy as np

from warehouse.demo.batch import format_ids
from warehouse.demo.timeline import DAY, Profile, Window, to_micros

DEFAULT_ANCHOR = datetime(2025, 11, 3, tzinfo=UTC)
SNAPSHOT_DAYS = 28
STEP_DAYS = 1
CHUNK_ROWS = 50_000

SNAPSHOT_VOLUMES: dict[str, int] = {
    "action_contracts": 20_000,
    "error_events": 5_000,
    "missions": 1_000,
    "agent_queries": 10_000,
    "agent_traces": 6_667,
}
"""Rows over the snapshot's 28 days at scale 1; approvals and feedback derive from contracts and queries."""


@dataclass(frozen=True)
class World:
    seed: int
    scale: float
    anchor: int

    @classmethod
    def create(cls, seed: int, scale: float, anchor: datetime | None) -> World:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale!r}.")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
        anchor = DEFAULT_ANCHOR if anchor is None else anchor
        if anchor.tzinfo is None:
            raise ValueError(f"anchor must be timezone-aware (UTC), got the naive {anchor.isoformat()}.")
        return cls(seed, scale, to_micros(anchor))

    @property
    def snapshot(self) -> Window:
        return Window(self.anchor - SNAPSHOT_DAYS * DAY, self.anchor)

    def period(self, step: int) -> Window:
        """The simulated time of ``advance`` step ``step``: the day after the previous one."""
        return Window(self.anchor + (step - 1) * STEP_DAYS * DAY, self.anchor + step * STEP_DAYS * DAY)

    def stream(self, step: int, name: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, step, zlib.crc32(name.encode())])

    def volume(self, table: str, profile: Profile, window: Window) -> int:
        """Events of ``table`` in ``window``: the snapshot's count, spread by the same weights as its hours."""
        total = SNAPSHOT_VOLUMES[table] * self.scale
        snapshot_weight = profile.weights(self.snapshot.slots(), self.anchor).sum()
        return round(total * profile.weights(window.slots(), self.anchor).sum() / snapshot_weight)

    @cached_property
    def users(self) -> np.ndarray:
        """A few hundred users (more at large scales)."""
        count = max(200, round(300 * self.scale**0.5))
        return format_ids("user_", np.arange(1, count + 1), digits=5)

    @cached_property
    def user_weights(self) -> np.ndarray:
        """Zipf-like: a handful of power users, a long tail of occasional ones."""
        weights = 1.0 / np.arange(1, self.users.size + 1) ** 0.8
        return weights / weights.sum()
