"""Aggregates over plain rows, spelled the way catalog.md defines them."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.metrics.reference.source import Row

Aggregate = Callable[[list[Row]], Any]
Predicate = Callable[[Row], bool]


def count(where: Predicate = lambda row: True) -> Aggregate:
    return lambda rows: sum(1 for row in rows if where(row))


def ratio(numerator: Predicate, denominator: Predicate) -> Aggregate:
    """Share of the denominator's rows that the numerator keeps; None without denominator rows."""

    def aggregate(rows: list[Row]) -> float | None:
        among = [row for row in rows if denominator(row)]
        return sum(1 for row in among if numerator(row)) / len(among) if among else None

    return aggregate


def _present(rows: list[Row], value: Callable[[Row], Any]) -> list[Any]:
    return [v for v in map(value, rows) if v is not None]


def mean(value: Callable[[Row], Any]) -> Aggregate:
    return lambda rows: statistics.fmean(values) if (values := _present(rows, value)) else None


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks, as PostgreSQL ``percentile_cont``."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def percentile(fraction: float, value: Callable[[Row], Any]) -> Aggregate:
    return lambda rows: percentile_cont([float(v) for v in _present(rows, value)], fraction)


def distinct(value: Callable[[Row], Any]) -> Aggregate:
    return lambda rows: len(set(_present(rows, value)))


def total(value: Callable[[Row], Any]) -> Aggregate:
    return lambda rows: float(sum(values)) if (values := _present(rows, value)) else None


def seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


def column(name: str) -> Callable[[Row], Any]:
    return lambda row: row[name]


def equals(name: str, *values: Any) -> Predicate:
    return lambda row: row[name] in values


def is_true(name: str) -> Predicate:
    return lambda row: row[name] is True


def not_null(name: str) -> Predicate:
    return lambda row: row[name] is not None


@dataclass(frozen=True)
class FactMetric:
    fact: str
    aggregate: Aggregate


@dataclass(frozen=True)
class CrossMetric:
    """numerator / denominator per row of the shared dimensions, each side aggregated on its own."""

    numerator: str
    denominator: str
