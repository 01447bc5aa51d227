"""The warehouse's data version: a new one is committed by every ETL run (and rollup build) that changed what
queries read, in the same transaction, and by nothing else; readers may keep answers while it stays the same.

A run that finds nothing new leaves it alone, so a server that loads every few seconds keeps its cached answers.
"""

from __future__ import annotations

import sqlalchemy as sa

from warehouse import schema

DATA_VERSION = "data_version"
"""Its name in ``etl_settings``."""


def advance(connection: sa.Connection, version: str) -> None:
    """Make ``version`` (unique: a run id) the data version, in the caller's transaction."""
    settings = schema.etl_settings
    connection.execute(sa.delete(settings).where(settings.c.name == DATA_VERSION))
    connection.execute(sa.insert(settings).values(name=DATA_VERSION, value=version))
