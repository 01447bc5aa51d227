"""Platform activity over a window: every event stream, planned first, then generated chunk by chunk.

Planning fixes each stream's chunk sizes before any row exists, so exact
totals (derived tables included) reach the progress bar up front, and memory
stays bounded by one chunk whatever the scale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from warehouse.demo import contracts, error_events, queries, traces
from warehouse.demo.batch import Batch
from warehouse.demo.scene import Scene
from warehouse.demo.timeline import ALWAYS_ON, BUSINESS, Chunk, Profile, Window, plan_chunks
from warehouse.demo.world import CHUNK_ROWS, World
from warehouse.demo.writer import Writer

Generate = Callable[[np.random.Generator, Scene, np.ndarray, np.ndarray], list[Batch]]


@dataclass(frozen=True)
class Stream:
    table: str
    profile: Profile
    generate: Generate
    derived: tuple[tuple[str, Callable[[int], int]], ...] = ()
    """Tables whose rows are drawn from this stream's chunks, with their row count per chunk size."""


STREAMS: tuple[Stream, ...] = (
    Stream("action_contracts", BUSINESS, contracts.generate, (("approval_requests", contracts.approval_count),)),
    Stream("error_events", ALWAYS_ON, error_events.generate),
    Stream("agent_queries", BUSINESS, queries.generate, (("agent_feedback", queries.feedback_count),)),
    Stream("agent_traces", BUSINESS, traces.generate),
)
STREAM_OF: dict[str, Stream] = {stream.table: stream for stream in STREAMS}


@dataclass(frozen=True)
class PlannedStream:
    stream: Stream
    rng: np.random.Generator
    chunks: list[Chunk]

    def totals(self) -> dict[str, int]:
        sizes = [len(chunk) for chunk in self.chunks]
        derived = {table: sum(count(size) for size in sizes) for table, count in self.stream.derived}
        return {self.stream.table: sum(sizes), **derived}


def plan_activity(world: World, step: int, window: Window) -> list[PlannedStream]:
    planned = []
    for stream in STREAMS:
        rng = world.stream(step, stream.table)
        total = world.volume(stream.table, stream.profile, window)
        weights = stream.profile.weights(window.slots(), world.anchor)
        planned.append(PlannedStream(stream, rng, plan_chunks(rng, window, total, weights, CHUNK_ROWS)))
    return planned


def write_activity(writer: Writer, scene: Scene, planned: list[PlannedStream], as_of: int) -> None:
    """Generate and write the planned events as the source holds them at ``as_of``."""
    for plan in planned:
        for chunk in plan.chunks:
            times = chunk.times(plan.rng)
            for batch in plan.stream.generate(plan.rng, scene, times, np.full(times.size, as_of, dtype=np.int64)):
                writer.insert(batch)
