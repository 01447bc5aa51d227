"""Source values into warehouse values: the number parsers stop what SQLite's dynamic typing lets through."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from warehouse.etl.values import integer, real, utc_timestamp


@pytest.mark.parametrize(("value", "parsed"), [(0, 0), (-7, -7), (2**40, 2**40), (3.0, 3)])
def test_integer_accepts_integral_numbers(value: Any, parsed: int) -> None:
    assert integer(value) == parsed
    assert type(integer(value)) is int


@pytest.mark.parametrize("value", [True, False, 2.5, float("nan"), float("inf"), "12", "fast", b"1", Decimal("1")])
def test_integer_rejects_bools_fractions_and_text(value: Any) -> None:
    with pytest.raises(ValueError, match="an integer"):
        integer(value)


@pytest.mark.parametrize(("value", "parsed"), [(0.25, 0.25), (3, 3.0), (Decimal("0.5"), 0.5)])
def test_real_accepts_numbers(value: Any, parsed: float) -> None:
    assert real(value) == parsed
    assert type(real(value)) is float


@pytest.mark.parametrize("value", [True, "0.5", "fast", b"0.5"])
def test_real_rejects_bools_and_text(value: Any) -> None:
    with pytest.raises(ValueError, match="a number"):
        real(value)


@pytest.mark.parametrize(
    "value",
    [
        "2025-11-03 10:00:00",
        " 2025-11-03T10:00:00Z ",
        "2025-11-03T12:00:00+02:00",
        "2025-11-03 10:00:00.000+00:00",
        datetime(2025, 11, 3, 10),
        datetime(2025, 11, 3, 5, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_utc_timestamp_gives_naive_utc(value: Any) -> None:
    assert utc_timestamp(value) == datetime(2025, 11, 3, 10)
    assert utc_timestamp(value).tzinfo is None  # type: ignore[union-attr]


@pytest.mark.parametrize("value", ["yesterday", 1762164000, b"2025-11-03"])
def test_utc_timestamp_rejects_what_is_no_timestamp(value: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        utc_timestamp(value)
