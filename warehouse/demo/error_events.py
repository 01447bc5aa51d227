"""Error events: most heal themselves in seconds, the rest wait hours for a person, some stay open.

``auto_resolved`` is only true once the automatic fix has happened, so an error
observed before its resolution shows neither flag nor ``resolved_at``.
"""

from __future__ import annotations

import numpy as np

from warehouse.demo import cast
from warehouse.demo.batch import Batch, row_ids
from warehouse.demo.sampling import chance, choose_weighted, clip_updates, lag, lognormal
from warehouse.demo.scene import Scene
from warehouse.demo.timeline import HOUR, NEVER, SECOND
from warehouse.demo.vocabulary import ERROR_TYPES, SEVERITIES
from warehouse.source import error_events


def generate(rng: np.random.Generator, scene: Scene, times: np.ndarray, as_of: np.ndarray) -> list[Batch]:
    size = times.size
    seqs = scene.sequences.take("error_events", size)
    automatic = chance(rng, 0.4, size)
    healing = np.where(automatic, lognormal(rng, 30 * SECOND, 1.0, size), lognormal(rng, 2 * HOUR, 1.5, size))
    resolution = np.where(~automatic & chance(rng, 0.15, size), NEVER, times + healing.astype(np.int64))
    resolved = resolution <= as_of
    updated = np.where(resolved, resolution, times) + lag(rng, size)
    return [
        Batch(
            error_events,
            seqs,
            {
                "event_id": row_ids("error_events", seqs),
                "occurred_at": times,
                "component_name": cast.components(rng, size, failing=True),
                "tier_id": cast.tiers(rng, size),
                "agent_name": cast.agents(rng, size),
                "error_type": choose_weighted(rng, ERROR_TYPES, size),
                "severity": choose_weighted(rng, SEVERITIES, size),
                "auto_resolved": automatic & resolved,
                "resolved_at": np.where(resolved, resolution, 0),
                "updated_at": clip_updates(updated, times, as_of),
            },
            {"tier_id": chance(rng, 0.25, size), "agent_name": chance(rng, 0.35, size), "resolved_at": ~resolved},
        )
    ]
