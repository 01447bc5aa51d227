"""Errors of the metrics layer, each with a stable code the API maps to GraphQL.

MetricsError                      code
├── ConfigError                   INVALID_CONFIG   config files hold problems (all listed)
├── QueryError                                     a request the registry cannot answer
│   ├── UnknownMetric             UNKNOWN_FIELD
│   ├── UnknownDimension          UNKNOWN_FIELD    also an unknown time grain
│   ├── InvalidDimension          INVALID_DIMENSION   a metric's fact cannot be sliced by it
│   ├── TimeGrainRequired         INVALID_DIMENSION   a time-relative metric without one time grain
│   ├── InvalidFilter             INVALID_FILTER   also an unknown filter or having operator
│   ├── InvalidRequest            INVALID_ARGUMENT no metric, bad order, time zone, paging
│   ├── LimitExceeded             LIMIT_EXCEEDED
│   ├── Forbidden                 FORBIDDEN        the caller's policies do not allow it (or it does not exist)
│   └── QueryTimeout              TIMEOUT
└── BackendError                  INTERNAL         the warehouse failed (driver errors, translated by the engine)
    └── BackendUnavailable        UNAVAILABLE      no such warehouse, no connection, or no answer in time: retry later
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """' (did you mean x?)' for the closest candidate, or ''."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class MetricsError(Exception):
    code = "INTERNAL"


@dataclass(frozen=True)
class Issue:
    """One problem in config: where it is, what is wrong, how to fix it."""

    code: str
    message: str
    file: str
    line: int
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message} [{self.code}]"


class ConfigError(MetricsError):
    code = "INVALID_CONFIG"

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__(f"{len(issues)} problem(s) in metric config:\n" + "\n".join(map(str, issues)))


class QueryError(MetricsError):
    code = "INVALID_FILTER"


class UnknownMetric(QueryError):
    code = "UNKNOWN_FIELD"

    def __init__(self, name: str, known: Iterable[str]) -> None:
        super().__init__(f"unknown metric {name!r}{did_you_mean(name, known)}")


class UnknownDimension(QueryError):
    code = "UNKNOWN_FIELD"

    def __init__(self, name: str, known: Iterable[str], *, hint: str = "") -> None:
        super().__init__(f"unknown dimension attribute {name!r}{did_you_mean(name, known)}{hint}")


class InvalidDimension(QueryError):
    code = "INVALID_DIMENSION"

    def __init__(self, metric: str, dimension: str, allowed: Iterable[str]) -> None:
        self.metric, self.dimension, self.allowed = metric, dimension, sorted(allowed)
        super().__init__(
            f"metric {metric!r} cannot be sliced or filtered by {dimension!r}; "
            f"its dimensions are: {', '.join(self.allowed)}"
        )


class TimeGrainRequired(QueryError):
    """A time-relative metric (window, offset) or ``fillGaps`` asked for without exactly one time grain."""

    code = "INVALID_DIMENSION"


class InvalidFilter(QueryError):
    code = "INVALID_FILTER"


class InvalidRequest(QueryError):
    """A request argument other than a filter is wrong: nothing selected, an unknown time zone, bad paging."""

    code = "INVALID_ARGUMENT"


class LimitExceeded(QueryError):
    code = "LIMIT_EXCEEDED"


class Forbidden(QueryError):
    """Outside the caller's policies; said the same way whether or not the name exists, so nothing leaks."""

    code = "FORBIDDEN"


class QueryTimeout(QueryError):
    code = "TIMEOUT"


class BackendError(MetricsError):
    """A warehouse failure the request did not cause; the driver's exception is the ``__cause__``."""

    code = "INTERNAL"


class BackendUnavailable(BackendError):
    """The warehouse is down, refuses connections or does not answer in time: an outage, not a bug."""

    code = "UNAVAILABLE"
