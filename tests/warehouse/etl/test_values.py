"""Source values into warehouse values: the number parsers stop what SQLite's dynamic typing lets through."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from warehouse.etl.values import integer, real


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
