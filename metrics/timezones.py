"""The time zones a request may name: one list, the IANA names every part of the stack knows.

Python (``zoneinfo``, for results), DuckDB (ICU) and PostgreSQL each know a
slightly different set: PostgreSQL also takes ``localtime``, ``posixrules``
and the ``posix/`` and ``right/`` trees, which DuckDB refuses, and reads
``CET``, ``EET``, ``MET`` and ``WET`` as fixed-offset abbreviations where the
others apply daylight saving time. A zone that the backends read differently
would make the same request answer differently per warehouse, so
``timezones.txt`` holds the zones all three read alike: the intersection of
``zoneinfo.available_timezones()`` and both backends' ``pg_timezone_names``,
less the names PostgreSQL reads as an abbreviation of another offset. A test
holds that both backends convert every zone in it as Python does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from zoneinfo import ZoneInfo

from metrics.errors import InvalidRequest, did_you_mean

TIME_ZONES: frozenset[str] = frozenset(
    line for line in files("metrics").joinpath("timezones.txt").read_text().splitlines() if not line.startswith("#")
)
_BY_LOWER = {name.lower(): name for name in TIME_ZONES}
_LONGEST = max(map(len, TIME_ZONES))


def check_time_zone(name: str) -> str:
    """``name`` if it is a known zone; else ``InvalidRequest`` with the closest names (cheap even for a huge name)."""
    if name in TIME_ZONES:
        return name
    shown = name if len(name) <= 2 * _LONGEST else name[: 2 * _LONGEST] + "..."
    if len(name) > 2 * _LONGEST:
        hint = ""
    elif name.lower() in _BY_LOWER:
        hint = f" (did you mean {_BY_LOWER[name.lower()]!r}?)"
    else:
        hint = did_you_mean(name, TIME_ZONES)
    raise InvalidRequest(f"unknown time zone {shown!r}{hint}; use an IANA name such as 'Europe/Berlin'")


CHECKED_FROM = datetime(1970, 1, 1)
CHECKED_TO = datetime(2100, 1, 1)
"""The instants (naive UTC) over which ``steady_within`` checks a zone's offsets: ``zoneinfo`` knows every change
from 1970 on; earlier offsets include local mean times of seconds, which no bucket grain divides."""


@cache
def offset_changes(zone: str) -> tuple[tuple[int, int], ...]:
    """(first second in UTC, offset in seconds) of each offset the zone has from ``CHECKED_FROM`` to ``CHECKED_TO``."""
    tz = ZoneInfo(zone)

    def offset(instant: int) -> int:
        found = datetime.fromtimestamp(instant, tz).utcoffset()
        assert found is not None  # a ZoneInfo always has one
        return int(found.total_seconds())

    day = 86_400
    start, end = (int(moment.replace(tzinfo=UTC).timestamp()) for moment in (CHECKED_FROM, CHECKED_TO))
    changes = [(start, offset(start))]
    for instant in range(start, end, day):
        current = offset(instant + day)
        if current == changes[-1][1]:
            continue
        low, high = instant, instant + day  # the change lies in (low, high]: find its first second
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if offset(middle) == changes[-1][1] else (low, middle)
        changes.append((high, current))
    return tuple(changes)


def steady_within(zone: str, seconds: int) -> bool:
    """Whether, from ``CHECKED_FROM`` to ``CHECKED_TO``, the zone's UTC offsets are whole multiples of ``seconds``
    and change only on ``seconds`` edges of UTC, so that every UTC bucket of that length lies in one local bucket
    of that length or longer (Europe/Berlin: hours yes, days no; Asia/Kolkata: minutes yes, hours no)."""
    return zone == "UTC" or all(
        offset % seconds == 0 and (index == 0 or instant % seconds == 0)
        for index, (instant, offset) in enumerate(offset_changes(zone))
    )
