"""What every event generator draws from: the world, the id counters and the missions actions can join."""

from __future__ import annotations

from dataclasses import dataclass

from warehouse.demo.batch import Sequences
from warehouse.demo.missions import MissionPool
from warehouse.demo.world import World


@dataclass(frozen=True)
class Scene:
    world: World
    sequences: Sequences
    missions: MissionPool
