"""A cache entry gives back exactly the result it was made from, and nothing but such an entry is read."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from metrics.compiler import OutputColumn
from metrics.model import DataType
from metrics.result_codec import FORMAT, Uncacheable, decode, encode
from metrics.results import QueryResult

COLUMNS = (
    OutputColumn("tier.name", "Tier", DataType.STRING, False),
    OutputColumn("time.hour", "Hour", DataType.TIMESTAMP, False),
    OutputColumn("time.is_weekend", "Weekend", DataType.BOOLEAN, False),
    OutputColumn("verification_count", "Verifications", DataType.INTEGER, True),
    OutputColumn("p95_verification_duration_ms", "p95", DataType.FLOAT, True),
)
DST_END = datetime(2025, 10, 26, 0, 0)  # Paris: 02:00 CEST (+02:00), 02:00 CET (+01:00) an hour later, in UTC 0:00
RAW = [
    ("Assist", DST_END + timedelta(hours=hour), hour % 2 == 0, 10**15 + hour, 0.1 + hour / 3, 7) for hour in range(4)
] + [(None, None, None, None, None, 7), ("Operational", DST_END, False, 0, -0.0, 7)]


def _result(timezone: str) -> QueryResult:
    return QueryResult.from_rows(COLUMNS, RAW, timezone, counted=True)


def _cells(result: QueryResult) -> list[tuple[object, ...]]:
    """Each value with its type and, for datetimes, the offset it carries."""
    return [
        (value, type(value), value.utcoffset() if isinstance(value, datetime) else None)
        for row in result.rows
        for value in row
    ]


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Paris", "Asia/Kolkata"])
def test_an_entry_gives_back_the_same_values_types_and_offsets(timezone: str) -> None:
    original = _result(timezone)
    restored = decode(encode(original), COLUMNS, timezone)
    assert restored is not None
    assert restored == original and restored.total_count == 7
    assert _cells(restored) == _cells(original)
    if timezone == "Europe/Paris":  # the two 02:00 of the night the clocks go back stay two instants
        hours = restored.column("time.hour")
        assert [h.isoformat() for h in hours[0:2]] == ["2025-10-26T02:00:00+02:00", "2025-10-26T02:00:00+01:00"]


def test_a_time_bucket_repeated_down_its_column_is_one_object_again() -> None:
    restored = decode(encode(_result("UTC")), COLUMNS, "UTC")
    assert restored is not None
    hours = restored.column("time.hour")
    assert hours[0] is hours[5]  # the fast path formats each bucket object once


@pytest.mark.parametrize(
    "value, column",
    [
        (float("nan"), COLUMNS[4]),
        (float("inf"), COLUMNS[4]),
        (2**70, COLUMNS[3]),
        (datetime(2025, 1, 1), COLUMNS[1]),  # naive: not a converted bucket
        (b"bytes", COLUMNS[0]),
        (True, COLUMNS[3]),  # a bool is not a count
    ],
)
def test_a_value_the_encoding_cannot_give_back_exactly_is_not_stored(value: object, column: OutputColumn) -> None:
    result = QueryResult((column,), ([1.5 if column.type is DataType.FLOAT else None, value],), None, "UTC")
    with pytest.raises(Uncacheable):
        encode(result)


def _entry(**changes: object) -> bytes:
    entry = orjson.loads(encode(_result("UTC"))) | changes
    return orjson.dumps(entry)


@pytest.mark.parametrize(
    "data",
    [
        pickle.dumps(_result("UTC")),
        b"not json",
        b"[]",
        _entry(format=FORMAT + 1),
        _entry(total="7"),
        _entry(columns=[["Assist"]] * 5),  # columns of unequal length
        _entry(columns=[[1], ["x"], [True], [1], [1.0]]),  # a number where a string belongs
        _entry(columns=[["x"], ["yesterday"], [True], [1], [1.0]]),  # not a timestamp
        _entry(columns=[["x"], [None], [True], [1], [1]]),  # an int where a float belongs
        _entry(columns=[["x"], [None], [True], [1.0], [1.0]]),  # a float where a count belongs
        _entry(columns=[["x"], [None], [True], [1]]),  # a column short
    ],
    ids=[
        "pickle",
        "not-json",
        "not-an-object",
        "other-format",
        "total-text",
        "ragged",
        "string-column",
        "timestamp-column",
        "float-column",
        "count-column",
        "column-count",
    ],
)
def test_anything_but_such_an_entry_is_ignored(data: bytes) -> None:
    assert decode(data, COLUMNS, "UTC") is None


def test_aware_timestamps_in_utc_keep_utc() -> None:
    result = QueryResult((COLUMNS[1],), ([datetime(2025, 1, 1, tzinfo=UTC)],), None, "UTC")
    restored = decode(encode(result), (COLUMNS[1],), "UTC")
    assert restored is not None and restored.values[0][0].utcoffset() == timedelta(0)
