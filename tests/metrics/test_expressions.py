"""The config's expression language: what it admits, what it names, and what it refuses."""

from __future__ import annotations

import pytest

from metrics.expressions import names, parse


@pytest.mark.parametrize(
    ("expression", "calls", "read"),
    [
        ("a + b / 2", False, ["a", "b"]),
        ("-(a - 1.5) * b", False, ["a", "b"]),
        ("coalesce(a, 0) + seconds_between(start, end)", True, ["a", "start", "end"]),
        ("anything(a)", True, ["a"]),
    ],
)
def test_admits_arithmetic_and_plain_calls(expression: str, calls: bool, read: list[str]) -> None:
    assert names(parse(expression, calls=calls)) == read


@pytest.mark.parametrize(
    ("expression", "calls"),
    [
        ("coalesce(a, 0)", False),
        ("a.real", True),
        ("a.f(b)", True),
        ("f(x=1)", True),
        ("f(*a)", True),
        ("'text'", True),
        ("True", True),
        ("a < b", True),
        ("a if b else c", True),
        ("a ** 2", True),
        ("a +", True),
    ],
)
def test_refuses_everything_else(expression: str, calls: bool) -> None:
    with pytest.raises(ValueError, match="may only combine|is not an arithmetic expression"):
        parse(expression, calls=calls)
