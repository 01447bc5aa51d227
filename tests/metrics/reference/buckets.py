"""Time attributes of an instant in a zone, buckets as the instants they start at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

GRAINS = ("minute", "hour", "day", "week", "month", "quarter", "year")
TIME_PARTS = ("day_of_week", "hour_of_day", "is_weekend")


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """What the zone's clocks read at a naive UTC instant."""
    return instant.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def first_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The earliest naive UTC instant at which the clocks read ``wall`` or, where they skip it, jump past it."""
    readings = [wall - wall.replace(tzinfo=zone, fold=fold).utcoffset() for fold in (0, 1)]  # type: ignore[operator]
    real = [instant for instant in readings if _wall(instant, zone) == wall]
    if real:
        return min(real)
    low, high = min(readings), max(readings)  # the clocks read before wall at low, past it at high
    while high - low > timedelta(seconds=1):  # transitions fall on whole seconds
        middle = low + timedelta(seconds=(high - low) // timedelta(seconds=2))
        low, high = (middle, high) if _wall(middle, zone) < wall else (low, middle)
    return high


def bucket_start(moment: datetime, grain: str, zone: ZoneInfo) -> datetime:
    """The first instant (naive UTC) of the bucket holding a naive UTC instant, in the zone.

    Minutes and hours are the clock's minute or hour at the instant's own
    offset (the autumn hour that repeats is two buckets); longer buckets start
    at the first instant of their first local day.
    """
    local = moment.replace(tzinfo=UTC).astimezone(zone)
    wall = local.replace(tzinfo=None, second=0, microsecond=0)
    if grain in ("minute", "hour"):
        wall = wall if grain == "minute" else wall.replace(minute=0)
        own = wall - local.utcoffset()  # type: ignore[operator]
        return own if _wall(own, zone) == wall else first_instant(wall, zone)
    wall = wall.replace(hour=0, minute=0)
    if grain == "week":
        wall -= timedelta(days=wall.weekday())
    elif grain == "month":
        wall = wall.replace(day=1)
    elif grain == "quarter":
        wall = wall.replace(month=(wall.month - 1) // 3 * 3 + 1, day=1)
    elif grain == "year":
        wall = wall.replace(month=1, day=1)
    else:
        assert grain == "day", grain
    return first_instant(wall, zone)


def time_value(moment: datetime, attribute: str, zone: ZoneInfo) -> Any:
    local = moment.replace(tzinfo=UTC).astimezone(zone)
    if attribute == "day_of_week":
        return local.isoweekday()
    if attribute == "hour_of_day":
        return local.hour
    if attribute == "is_weekend":
        return local.isoweekday() >= 6
    return bucket_start(moment, attribute, zone).replace(tzinfo=UTC)
