"""One more period of platform life on an existing demo source, with the awkward parts of real data.

Besides the period's new events and state changes, a step writes rows that
commit late (a long transaction: ``updated_at`` a few minutes older than rows
already visible, which an ETL watermark without overlap would skip) and events
that arrive days after they happened (their event time lands in a period that
was loaded long ago). Step 1 also commits the missions the snapshot withheld.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from warehouse.demo import changes, transitions
from warehouse.demo.activity import STREAM_OF, PlannedStream, plan_activity, write_activity
from warehouse.demo.backends import open_source
from warehouse.demo.batch import Batch, Sequences
from warehouse.demo.missions import MissionPool, observe, plan_missions, snapshot_plan
from warehouse.demo.scene import Scene
from warehouse.demo.state import SourceState, read_state
from warehouse.demo.timeline import DAY, MINUTE, SECOND, Window, from_micros
from warehouse.demo.world import World
from warehouse.demo.writer import Progress, Writer
from warehouse.source import SOURCE_TABLES

LATE_COMMITS = 4
"""Rows per table committing late, in every step: few, like the real thing."""
LATE_COMMIT_TABLES = ("action_contracts", "error_events", "agent_queries", "agent_traces")
LATE_ARRIVAL_TABLES = ("action_contracts", "error_events", "agent_queries")
LATE_ARRIVAL_SHARE = 0.004


def _late_commits(world: World, step: int, state: SourceState, scene: Scene) -> list[Batch]:
    """Rows written 1-4 minutes before the newest row already visible, but committed only now."""
    rng = world.stream(step, "late commits")
    batches = []
    for table in LATE_COMMIT_TABLES:
        newest = state.newest_updates[table]
        times = np.sort(newest - rng.integers(150 * SECOND, 240 * SECOND, size=LATE_COMMITS))
        as_of = np.full(LATE_COMMITS, newest - MINUTE, dtype=np.int64)
        batches += STREAM_OF[table].generate(rng, scene, times, as_of)
    return batches


def _late_arrivals(world: World, step: int, period: Window, scene: Scene) -> list[Batch]:
    """Events from 1 to 10 days ago, replayed in one go during the period (a queue drained, a device back online)."""
    rng = world.stream(step, "late arrivals")
    batches = []
    for table in LATE_ARRIVAL_TABLES:
        stream = STREAM_OF[table]
        size = max(2, round(LATE_ARRIVAL_SHARE * world.volume(table, stream.profile, period)))
        times = np.sort(period.start - rng.integers(DAY, 10 * DAY, size=size))
        arrival = period.start + int(rng.integers(0, DAY))
        generated = stream.generate(rng, scene, times, np.full(size, arrival, dtype=np.int64))
        batches += [batch.committed_at(np.full(len(batch), arrival, dtype=np.int64)) for batch in generated]
    return batches


def _missions(world: World, step: int, state: SourceState, running: MissionPool) -> tuple[list[Batch], MissionPool]:
    """The period's new missions (plus, in step 1, the snapshot's withheld ones), and every mission actions can join."""
    period = world.period(step)
    new = plan_missions(world.stream(step, "missions"), world, period, state.next_seqs["missions"])
    rows = [observe(world.stream(step, "mission rows"), new, np.arange(len(new)), period.end)]
    pool = MissionPool.of(new).plus(running)
    if step == 1:
        plan = snapshot_plan(world)
        withheld = np.flatnonzero(plan.withheld())
        rng = world.stream(step, "withheld missions")
        late = observe(rng, plan, withheld, period.end)
        rows.append(late.committed_at(period.start + rng.integers(0, DAY, size=withheld.size)))
        pool = pool.plus(MissionPool(late.columns["mission_id"], plan.starts[withheld], plan.ends[withheld]))
    return rows, pool


@dataclass(frozen=True)
class StepPlan:
    updates: list[tuple[Batch, str]]
    """Changed rows with the key column that finds them."""
    inserts: list[Batch]
    activity: list[PlannedStream]
    scene: Scene


def plan_step(world: World, step: int, state: SourceState) -> StepPlan:
    period = world.period(step)
    rng = world.stream(step, "changes")
    reference_updates = [
        (changes.tier_change(rng, step, state, period), "tier_id"),
        (changes.agent_change(rng, step, state, period), "agent_name"),
    ]
    registered = changes.newcomers(rng, step, state, period)
    rng = world.stream(step, "transitions")
    ended, running = transitions.end_missions(rng, state.running_missions, period)
    updates = [
        *((batch, key) for batch, key in reference_updates if batch is not None),
        (transitions.complete_contracts(rng, state.pending_contracts, period), "contract_id"),
        (transitions.decide_approvals(rng, state.pending_approvals, period), "approval_id"),
        (transitions.resolve_errors(rng, state.open_errors, period), "event_id"),
        (ended, "mission_id"),
    ]
    missions, pool = _missions(world, step, state, running)
    scene = Scene(world, Sequences(state.next_seqs), pool)
    inserts = [
        *registered,
        *missions,
        *_late_commits(world, step, state, scene),
        *_late_arrivals(world, step, period, scene),
    ]
    return StepPlan(updates, inserts, plan_activity(world, step, period), scene)


def advance_demo_source(
    url: str,
    *,
    step: int,
    seed: int = 7,
    scale: float = 1.0,
    anchor: datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Simulate one more period of platform activity on an existing demo source (step = 1, 2, 3, ...).

    Step ``k`` is the day starting ``k - 1`` days after ``anchor``; pass the
    seed, scale and anchor the source was generated with, and run the steps
    in order. ``progress(table, done, total)`` is called after every chunk.
    Returns rows inserted or updated per table.
    """
    if step < 1:
        raise ValueError(f"step counts from 1 (the day after the anchor), got {step!r}.")
    world = World.create(seed, scale, anchor)
    period = world.period(step)
    engine, backend = open_source(url)
    try:
        with engine.begin() as connection:
            state = read_state(connection, url)
            if state.newest_update > period.start:
                newest, start = from_micros(state.newest_update).isoformat(), from_micros(period.start).isoformat()
                raise ValueError(
                    f"the demo source {url!r} already holds activity up to {newest}, "
                    f"past the start of step {step} ({start}); run each step once, in order."
                )
            plan = plan_step(world, step, state)
            writer = Writer(connection, backend, progress)
            for batch in [batch for batch, _ in plan.updates] + plan.inserts:
                writer.expect(batch.table.name, len(batch))
            for stream in plan.activity:
                for table, rows in stream.totals().items():
                    writer.expect(table, rows)
            for batch, key in plan.updates:
                writer.update(batch, key)
            for batch in plan.inserts:
                writer.insert(batch)
            write_activity(writer, plan.scene, plan.activity, period.end)
        return {table.name: writer.written[table.name] for table in SOURCE_TABLES}
    finally:
        engine.dispose()
