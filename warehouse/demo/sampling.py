"""Vectorised random draws for whole chunks of rows.

Every draw takes the generator explicitly and a row count, never global
state, so a chunk's content depends only on its stream and its position.
Names come back as object arrays: fixed-width numpy strings would silently
truncate a longer unknown name substituted later.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from warehouse.demo.timeline import SECOND
from warehouse.demo.vocabulary import Weighted


def choose(rng: np.random.Generator, names: Sequence[str], weights: Sequence[float], size: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return np.asarray(names, dtype=object)[rng.choice(len(names), size=size, p=p / p.sum())]


def choose_weighted(rng: np.random.Generator, words: Weighted, size: int) -> np.ndarray:
    return choose(rng, [word for word, _ in words], [weight for _, weight in words], size)


def sprinkle(rng: np.random.Generator, values: np.ndarray, unknown: Sequence[str], share: float) -> np.ndarray:
    """Replace a share of references by ids that no reference table holds (yet)."""
    hit = rng.random(values.size) < share
    picks = np.asarray(unknown, dtype=object)[rng.integers(0, len(unknown), size=values.size)]
    return np.where(hit, picks, values)


def chance(rng: np.random.Generator, p: float, size: int) -> np.ndarray:
    return rng.random(size) < p


def lognormal(rng: np.random.Generator, median: float, sigma: float, size: int) -> np.ndarray:
    """Long-tailed positive values: most are near the median, a few are many times larger."""
    return median * np.exp(sigma * rng.standard_normal(size))


def lag(rng: np.random.Generator, size: int) -> np.ndarray:
    """Microseconds between something happening and the application writing it down."""
    return rng.integers(2_000, 2 * SECOND, size=size)


def clip_updates(updated: np.ndarray, happened: np.ndarray, as_of: np.ndarray) -> np.ndarray:
    """``updated_at`` never precedes the event and never passes the instant the data is observed at."""
    return np.minimum(np.maximum(updated, happened), as_of)


def spread(rng: np.random.Generator, start: np.ndarray | int, end: np.ndarray | int, size: int) -> np.ndarray:
    """Uniform instants in ``[start, end)``."""
    span = np.maximum(np.asarray(end) - np.asarray(start), 1)
    return np.asarray(start) + (rng.random(size) * span).astype(np.int64)
