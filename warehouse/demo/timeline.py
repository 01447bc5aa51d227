"""When things happen: business hours on weekdays, long tails everywhere."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

WEEKEND_FACTOR = 0.35
OFF_HOURS_FACTOR = 0.3


def event_time(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A moment in [start, end), three times likelier in weekday office hours (09-18 UTC)."""
    span = (end - start).total_seconds()
    while True:
        moment = start + timedelta(seconds=rng.random() * span)
        weight = (WEEKEND_FACTOR if moment.weekday() >= 5 else 1.0) * (1.0 if 9 <= moment.hour < 18 else OFF_HOURS_FACTOR)
        if rng.random() < weight:
            return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def long_tail(rng: random.Random, median: float, spread: float = 0.9) -> float:
    """Log-normal: most values near the median, a few very large."""
    return median * math.exp(rng.gauss(0, spread))


def chance(rng: random.Random, probability: float) -> bool:
    return rng.random() < probability
