"""The registry's rollups as the derived tables the ETL keeps in step with the facts.

The warehouse reports what a run touched and records what derived tables did; the metrics layer knows how a
rollup is computed. This is where the two meet, for every command that runs the ETL.
"""

from __future__ import annotations

import sqlalchemy as sa

from metrics.registry import Registry
from metrics.rollup_store import RollupRefresh, Touched, ensure_rollups, refresh_rollups
from warehouse.etl import DerivedWrite
from warehouse.etl import Touched as WarehouseTouched


def _write(done: RollupRefresh) -> DerivedWrite:
    return DerivedWrite(done.rollup, done.action, done.rows, done.seconds)


class RegistryRollups:
    """``warehouse.etl.DerivedTables`` for the rollups a registry declares."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def build(self, connection: sa.Connection) -> list[DerivedWrite]:
        return [_write(done) for done in ensure_rollups(connection, self.registry)]

    def refresh(
        self, connection: sa.Connection, touched: list[WarehouseTouched], *, skip: set[str]
    ) -> list[DerivedWrite]:
        changes = [Touched(t.fact_table, t.start, t.end, t.member) for t in touched]
        return [_write(done) for done in refresh_rollups(connection, self.registry, changes, skip=skip)]
