"""Rows of one table as numpy columns, and the ids that name them.

Generators fill whole columns at once; the writer turns a batch into driver
rows only at the last moment. Timestamps are ``int64`` microseconds, NULLs
are a separate mask per column (so an integer column stays an integer array).
Each row carries its sequence number as ``keys``: it names the row in ids and
picks, deterministically, how SQLite spells the row's timestamps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa

ID_PREFIXES: dict[str, str] = {
    "missions": "msn_",
    "action_contracts": "ctr_",
    "error_events": "err_",
    "approval_requests": "apr_",
    "agent_queries": "qry_",
    "agent_feedback": "fbk_",
    "agent_traces": "trc_",
}
ID_DIGITS = 9


def format_ids(prefix: str, seqs: np.ndarray, digits: int = ID_DIGITS) -> np.ndarray:
    if not seqs.size:  # numpy's zfill cannot size an empty result
        return np.empty(0, dtype=object)
    return np.strings.add(prefix, np.strings.zfill(seqs.astype(np.str_), digits)).astype(object)


def bucket(keys: np.ndarray) -> np.ndarray:
    """A stable, well-mixed number 0..99 per row: picks the rows that get a rare treatment."""
    mixed = (keys.astype(np.uint64) * np.uint64(2_654_435_761)) & np.uint64(0xFFFF_FFFF)
    return (mixed * np.uint64(100) >> np.uint64(32)).astype(np.int64)


def seqs_of(ids: Sequence[str]) -> np.ndarray:
    """The sequence numbers back from ids such as ``ctr_000000042``."""
    return np.fromiter((int(value.rpartition("_")[2]) for value in ids), dtype=np.int64, count=len(ids))


@dataclass(frozen=True)
class Batch:
    table: sa.Table
    keys: np.ndarray
    columns: Mapping[str, np.ndarray]
    nulls: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, index: np.ndarray | slice) -> Batch:
        return Batch(
            self.table,
            self.keys[index],
            {name: values[index] for name, values in self.columns.items()},
            {name: mask[index] for name, mask in self.nulls.items()},
        )

    def committed_at(self, instants: np.ndarray) -> Batch:
        """The same rows, written by a transaction that committed at ``instants`` (late-arriving rows)."""
        columns = dict(self.columns)
        columns["updated_at"] = np.maximum(columns["updated_at"], instants)
        return Batch(self.table, self.keys, columns, self.nulls)


class Sequences:
    """The next free sequence number per event table, so ids never collide across steps."""

    def __init__(self, first: Mapping[str, int]) -> None:
        self._next = dict(first)

    def take(self, table: str, count: int) -> np.ndarray:
        start = self._next.get(table, 1)
        self._next[table] = start + count
        return np.arange(start, start + count, dtype=np.int64)


def row_ids(table: str, seqs: np.ndarray) -> np.ndarray:
    return format_ids(ID_PREFIXES[table], seqs)
