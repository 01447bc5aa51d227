"""When things happen: instants as integer microseconds, busy hours, and event times in chunks.

Instants are ``int64`` microseconds since the Unix epoch (UTC) so a whole chunk
of events is shifted, compared and clipped with numpy. A window is cut into
hour slots; each slot gets a weight from the weekly rhythm of a profile (people
work weekdays 9-18 UTC, machines never sleep entirely) and a slow growth trend,
and the window's events are spread over the slots by a multinomial draw, so the
row count of a window is exact and known before any row is generated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
NEVER = np.iinfo(np.int64).max // 4
"""The planned time of something that will not happen: far enough from overflow to add lags to it."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_THURSDAY = 3
"""1970-01-01 was a Thursday; with Monday = 0, weekday = (days since epoch + 3) % 7."""


def to_micros(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(micros))


@dataclass(frozen=True)
class Window:
    """A half-open span ``[start, end)`` of simulated time, a whole number of hours long."""

    start: int
    end: int

    def slots(self) -> np.ndarray:
        return np.arange(self.start, self.end, HOUR, dtype=np.int64)


@dataclass(frozen=True)
class Profile:
    """Relative activity by hour of day and weekday; the peak is weekday business hours."""

    shoulder: float
    night: float
    weekend_day: float
    weekend_night: float

    def weights(self, slots: np.ndarray, anchor: int) -> np.ndarray:
        middle = slots + HOUR // 2
        hour = (middle // HOUR) % 24
        weekend = ((middle // DAY) + _THURSDAY) % 7 >= 5
        business = (hour >= 9) & (hour < 18)
        shoulder = ((hour >= 7) & (hour < 9)) | ((hour >= 18) & (hour < 21))
        weekday_weight = np.where(business, 1.0, np.where(shoulder, self.shoulder, self.night))
        weekend_weight = np.where(business, self.weekend_day, self.weekend_night)
        growth = 1.0 + 0.005 * (middle - anchor) / DAY
        return np.where(weekend, weekend_weight, weekday_weight) * np.maximum(growth, 0.1)


BUSINESS = Profile(shoulder=0.45, night=0.1, weekend_day=0.25, weekend_night=0.07)
"""People-driven work: actions, approvals, missions, queries, traces."""

ALWAYS_ON = Profile(shoulder=0.7, night=0.45, weekend_day=0.55, weekend_night=0.4)
"""Failures follow load only partly: batch jobs and dependencies break at night too."""


@dataclass(frozen=True)
class Chunk:
    """Consecutive hour slots holding at most about one chunk's worth of events."""

    slots: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return int(self.counts.sum())

    def times(self, rng: np.random.Generator) -> np.ndarray:
        starts = np.repeat(self.slots, self.counts)
        return np.sort(starts + rng.integers(0, HOUR, size=starts.size))


def plan_chunks(
    rng: np.random.Generator, window: Window, total: int, weights: np.ndarray, chunk_rows: int
) -> list[Chunk]:
    """Split ``total`` events over the window's slots, grouped into time-ordered chunks."""
    counts = rng.multinomial(total, weights / weights.sum())
    before = np.cumsum(counts) - counts
    group = before // chunk_rows
    cuts = np.flatnonzero(np.diff(group)) + 1
    slots = window.slots()
    return [Chunk(s, c) for s, c in zip(np.split(slots, cuts), np.split(counts, cuts), strict=True) if c.sum()]


def sample_times(rng: np.random.Generator, window: Window, total: int, weights: np.ndarray) -> np.ndarray:
    """All event times of a window at once, for tables small enough to hold whole."""
    return Chunk(window.slots(), rng.multinomial(total, weights / weights.sum())).times(rng)
