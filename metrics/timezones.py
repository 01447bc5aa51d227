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

from importlib.resources import files

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
