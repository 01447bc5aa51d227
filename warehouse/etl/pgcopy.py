"""Arrow tables as PostgreSQL's binary COPY stream, built column by column with numpy.

COPY ... (FORMAT binary) takes each row as a field count and, per field, a
big-endian length (-1 for NULL) and the value in the type's binary send
format. Building that per value in Python costs more than the load itself;
here each column is encoded at once and scattered into one buffer: fixed-width
values through a (rows x width) view, text by index arithmetic over Arrow's
offsets and data buffers.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_POSTGRES_EPOCH_US = 946_684_800_000_000
"""2000-01-01 in microseconds since 1970-01-01: PostgreSQL timestamps count from there."""


def _put(out: np.ndarray, positions: np.ndarray, values: np.ndarray) -> None:
    """Write row i of the (rows x width) byte matrix ``values`` at ``out[positions[i]:]``."""
    if len(positions):
        out[positions[:, None] + np.arange(values.shape[1])] = values


def _fixed(array: pa.Array, kind: sa.types.TypeEngine[object]) -> np.ndarray:
    """The column's values as a (rows x width) matrix of big-endian bytes; NULLs as zeros, skipped when written."""
    if isinstance(kind, sa.Boolean):
        values = array.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint8)
    elif isinstance(kind, sa.DateTime):
        micros = pc.cast(pc.cast(array, pa.timestamp("us")), pa.int64()).fill_null(0).to_numpy()
        values = (micros - _POSTGRES_EPOCH_US).astype(">i8")
    elif isinstance(kind, sa.BigInteger):
        values = array.fill_null(0).to_numpy(zero_copy_only=False).astype(">i8")
    elif isinstance(kind, sa.Integer):
        values = array.fill_null(0).to_numpy(zero_copy_only=False).astype(">i4")
    else:  # sa.Float
        values = array.fill_null(0).to_numpy(zero_copy_only=False).astype(">f8")
    return values.view(np.uint8).reshape(len(array), -1)


class _Text:
    """A text column: lengths (-1 for NULL) and a scatter of its UTF-8 bytes to where each value goes."""

    def __init__(self, array: pa.Array, nulls: np.ndarray) -> None:
        array = pc.cast(array, pa.large_string())
        _, offsets, data = array.buffers()
        bounds = np.frombuffer(offsets, np.int64)[array.offset : array.offset + len(array) + 1]
        self.starts = bounds[:-1]
        self.sizes = np.where(nulls, 0, np.diff(bounds))
        self.data = np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8)

    def put(self, out: np.ndarray, positions: np.ndarray) -> None:
        total = int(self.sizes.sum())
        if not total:
            return
        before = np.cumsum(self.sizes) - self.sizes
        step = np.arange(total)
        out[step + np.repeat(positions - before, self.sizes)] = self.data[
            step + np.repeat(self.starts - before, self.sizes)
        ]


def binary_copy(rows: pa.Table, columns: list[sa.Column[object]]) -> memoryview:
    """The rows in COPY's binary format, for the table columns ``columns`` (in that order)."""
    count = rows.num_rows
    encoded = []
    for column in columns:
        array = rows.column(column.name).combine_chunks()
        nulls = array.is_null().to_numpy(zero_copy_only=False)
        if isinstance(column.type, (sa.Boolean, sa.DateTime, sa.Integer, sa.Float)):
            values = _fixed(array, column.type)
            sizes = np.where(nulls, 0, values.shape[1])
        else:
            values = _Text(array, nulls)
            sizes = values.sizes
        encoded.append((nulls, sizes, values))
    row_sizes = 2 + sum(4 + sizes for _, sizes, _ in encoded) if encoded else np.full(count, 2)
    ends = np.cumsum(row_sizes, dtype=np.int64)
    out = np.empty(len(HEADER) + int(ends[-1] if count else 0) + len(TRAILER), np.uint8)
    out[: len(HEADER)] = np.frombuffer(HEADER, np.uint8)
    out[len(out) - len(TRAILER) :] = np.frombuffer(TRAILER, np.uint8)
    positions = len(HEADER) + ends - row_sizes
    _put(out, positions, np.full(count, len(columns), ">i2").view(np.uint8).reshape(count, 2))
    positions = positions + 2
    for nulls, sizes, values in encoded:
        lengths = np.where(nulls, -1, sizes).astype(">i4")
        _put(out, positions, lengths.view(np.uint8).reshape(count, 4))
        data = positions + 4
        if isinstance(values, _Text):
            values.put(out, data)
        else:
            present = ~nulls
            _put(out, data[present], values[present])
        positions = data + sizes
    return memoryview(out)
