"""Batches into driver rows, the way each source database stores values (sources.md).

SQLite keeps timestamps as ISO-8601 text, and real applications do not agree
on one spelling: most rows get ``2025-11-07 13:05:42.123456`` and a stable
share of rows (picked by row, so all timestamps of a row agree) get a ``T``
separator, a ``Z`` or ``+00:00`` suffix, or no fractional seconds, which the
ETL's parser must accept. PostgreSQL receives one unambiguous UTC spelling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from warehouse.demo.batch import Batch, bucket


def _iso(micros: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(micros.astype("datetime64[us]"), unit="us")


_SPELLERS: tuple[tuple[int, Callable[[str], str]], ...] = (
    (80, lambda iso: iso.replace("T", " ")),
    (5, lambda iso: iso),
    (5, lambda iso: iso.replace("T", " ") + "+00:00"),
    (4, lambda iso: iso + "Z"),
    (3, lambda iso: iso[:19].replace("T", " ")),
    (3, lambda iso: iso[:19] + "Z"),
)
"""(percent of rows, spelling of ``YYYY-MM-DDTHH:MM:SS.ffffff``); the first is the common one, done vectorised."""

_SPELLING_OF_BUCKET = np.repeat(np.arange(len(_SPELLERS)), [share for share, _ in _SPELLERS])


def sqlite_timestamps(micros: np.ndarray, keys: np.ndarray) -> list[str]:
    iso = _iso(micros)
    text = np.strings.replace(iso, "T", " ").tolist()
    spelling = _SPELLING_OF_BUCKET[bucket(keys)]
    for row in np.flatnonzero(spelling):
        text[row] = _SPELLERS[spelling[row]][1](str(iso[row]))
    return text


def postgresql_timestamps(micros: np.ndarray, keys: np.ndarray) -> list[str]:
    return np.datetime_as_string(micros.astype("datetime64[us]"), unit="us", timezone="UTC").tolist()


@dataclass(frozen=True)
class Encoding:
    timestamps: Callable[[np.ndarray, np.ndarray], list[str]]
    booleans: Callable[[np.ndarray], list[Any]]


SQLITE = Encoding(sqlite_timestamps, lambda values: values.astype(np.int64).tolist())
POSTGRESQL = Encoding(postgresql_timestamps, lambda values: values.tolist())


def _values(batch: Batch, name: str, encoding: Encoding) -> list[Any]:
    column_type = batch.table.c[name].type
    values = batch.columns[name]
    if isinstance(column_type, sa.DateTime):
        encoded = encoding.timestamps(values, batch.keys)
    elif isinstance(column_type, sa.Boolean):
        encoded = encoding.booleans(values)
    else:
        encoded = values.tolist()
    mask = batch.nulls.get(name)
    if mask is not None:
        for row in np.flatnonzero(mask):
            encoded[row] = None
    return encoded


def rows(batch: Batch, columns: Sequence[str], encoding: Encoding) -> list[tuple[Any, ...]]:
    return list(zip(*(_values(batch, name, encoding) for name in columns), strict=True))
