"""Tables derived from the facts (rollups), kept in step with them inside each run's transaction.

The warehouse does not know how a derived table is computed: it reports what a run touched (``touched``) and
records what the derived tables did. Whoever declares them implements ``DerivedTables``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa

from warehouse import schema
from warehouse.connections import exclusive_connection, warehouse_engine
from warehouse.etl import data_version
from warehouse.etl.touched import Touched


@dataclass(frozen=True)
class DerivedWrite:
    """What one derived table did: ``created`` or ``rebuilt`` (from all facts), ``dropped`` (no longer declared), or
    ``refreshed`` (what the run touched)."""

    name: str
    action: str
    rows: int
    seconds: float


class DerivedTables(Protocol):
    def build(self, connection: sa.Connection) -> list[DerivedWrite]:
        """Create the missing tables, rebuild those whose definition changed, drop those no longer declared."""
        ...

    def refresh(self, connection: sa.Connection, touched: list[Touched], *, skip: set[str]) -> list[DerivedWrite]:
        """Recompute what ``touched`` covers, in every table but those in ``skip`` (just built)."""
        ...


def build_derived(warehouse_url: str, derived: DerivedTables, *, lock_timeout: float = 600.0) -> list[DerivedWrite]:
    """Outside an ETL run, under its lock: build the missing and changed derived tables, drop the undeclared."""
    engine = warehouse_engine(warehouse_url)
    try:
        with exclusive_connection(engine, timeout=lock_timeout) as connection, connection.begin():
            schema.create_schema(connection)
            writes = derived.build(connection)
            if writes:
                data_version.advance(connection, uuid.uuid4().hex)
            return writes
    finally:
        engine.dispose()
