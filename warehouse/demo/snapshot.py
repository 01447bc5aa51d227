"""The initial snapshot: reference tables and four weeks of activity, as the source holds them at the anchor."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import sqlalchemy as sa

from warehouse.demo.activity import plan_activity, write_activity
from warehouse.demo.backends import open_source
from warehouse.demo.batch import Sequences
from warehouse.demo.members import registered_members
from warehouse.demo.missions import MissionPool, observe, snapshot_plan
from warehouse.demo.scene import Scene
from warehouse.demo.world import World
from warehouse.demo.writer import Progress, Writer
from warehouse.source import SOURCE_TABLES, source_metadata


def _refuse_filled(connection: sa.Connection, url: str) -> None:
    """Writing a snapshot over an existing one would collide on ids halfway through: refuse before writing."""
    filled = [
        table.name
        for table in SOURCE_TABLES
        if connection.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first()
    ]
    if filled:
        raise ValueError(
            f"the demo source {url!r} already holds rows in {', '.join(filled)}; "
            "generate into an empty database, or use advance_demo_source to add activity."
        )


def generate_demo_source(
    url: str,
    *,
    seed: int = 7,
    scale: float = 1.0,
    anchor: datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Create the source tables (if missing) at SQLAlchemy URL ``url`` and write the initial snapshot.

    ``scale`` 1 is 20,000 action contracts over the 28 days before ``anchor``
    (default 2025-11-03T00:00Z), other tables in proportion. The same seed,
    scale and anchor always give the same rows. ``progress(table, done,
    total)`` is called after every chunk. Returns rows written per table.
    """
    world = World.create(seed, scale, anchor)
    engine, backend = open_source(url)
    try:
        source_metadata.create_all(engine)
        with engine.begin() as connection:
            _refuse_filled(connection, url)
            writer = Writer(connection, backend, progress)
            references = registered_members(world)
            missions = snapshot_plan(world)
            committed = np.flatnonzero(~missions.withheld())
            planned = plan_activity(world, 0, world.snapshot)
            for batch in references:
                writer.expect(batch.table.name, len(batch))
            writer.expect("missions", committed.size)
            for plan in planned:
                for table, rows in plan.totals().items():
                    writer.expect(table, rows)

            for batch in references:
                writer.insert(batch)
            writer.insert(observe(world.stream(0, "mission rows"), missions, committed, world.anchor))
            scene = Scene(world, Sequences({}), MissionPool.of(missions))
            write_activity(writer, scene, planned, world.anchor)
        return {table.name: writer.written[table.name] for table in SOURCE_TABLES}
    finally:
        engine.dispose()
