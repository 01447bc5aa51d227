"""Which database a URL names: the one reading of URL schemes, for loading and querying alike.

The ETL (``warehouse``) and the query engine (``metrics``) open warehouses from
the same URLs and may not import each other, so the rule lives in this leaf
package, which imports neither. Each side then picks its own driver: the ETL
is synchronous (psycopg), the query server asynchronous (asyncpg).
"""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import make_url


class Database(StrEnum):
    DUCKDB = "duckdb"
    POSTGRESQL = "postgresql"
    SQLITE = "sqlite"


WAREHOUSE_URLS = "duckdb:///PATH or postgresql://USER@HOST/DATABASE"
"""The warehouse URLs there are, as messages name them."""

_SCHEMES = {
    "duckdb": Database.DUCKDB,
    "sqlite": Database.SQLITE,
    **dict.fromkeys(
        ("postgresql", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2", "postgres"),
        Database.POSTGRESQL,
    ),
}


def parse_url(url: str) -> sa.URL | None:
    """The URL, or None when the text is no URL at all."""
    try:
        return make_url(url)
    except sa.exc.ArgumentError:
        return None


def database_of(url: sa.URL) -> Database | None:
    """The database the URL's scheme names, with any of the drivers we know; None for any other."""
    return _SCHEMES.get(url.drivername)


def postgresql_with(url: sa.URL, driver: str) -> sa.URL:
    """A PostgreSQL URL through ``driver`` (``psycopg``, ``asyncpg``, or ``""`` for the plain scheme)."""
    return url.set(drivername=f"postgresql+{driver}" if driver else "postgresql")
