"""One list of time zones: every zone in it works on both warehouses (and in Python); any other is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from metrics.compiler import MetricRequest, compile_query
from metrics.compiler.functions import local_time
from metrics.engine import MetricsEngine
from metrics.errors import InvalidRequest
from metrics.registry import load_registry
from metrics.timezones import TIME_ZONES, check_time_zone

INSTANTS = (datetime(2025, 1, 15, 12, 0), datetime(2025, 7, 15, 12, 0))
"""A southern and a northern summer (naive UTC): zones with daylight saving show it in one of them."""


async def test_both_backends_know_every_listed_zone_as_python_does(warehouse_url: str) -> None:
    pairs = [(zone, instant) for zone in sorted(TIME_ZONES) for instant in INSTANTS]
    values = sa.values(sa.column("zone", sa.String()), sa.column("instant", sa.DateTime()), name="pairs").data(pairs)
    statement = sa.select(values.c.zone, values.c.instant, local_time(values.c.instant, values.c.zone))
    engine = await MetricsEngine.connect(warehouse_url)
    try:
        rows = {(zone, at): local for zone, at, local in await engine.execute(statement)}
    finally:
        await engine.close()
    expected = {(z, at): at.replace(tzinfo=UTC).astimezone(ZoneInfo(z)).replace(tzinfo=None) for z, at in pairs}
    assert rows == expected


def test_the_list_holds_the_usual_zones_and_none_of_the_odd_ones() -> None:
    assert {"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Kiritimati"} <= TIME_ZONES
    assert not {name for name in TIME_ZONES if name.startswith(("posix/", "right/"))}
    assert "localtime" not in TIME_ZONES and "posixrules" not in TIME_ZONES


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("localtime", "unknown time zone 'localtime'"),
        ("posixrules", "unknown time zone 'posixrules'"),
        ("right/UTC", "unknown time zone 'right/UTC'"),
        ("CET", "unknown time zone 'CET'"),
        ("posix/Europe/Berlin", "(did you mean 'Europe/Berlin'?)"),
        ("europe/berlin", "(did you mean 'Europe/Berlin'?)"),
        ("Europe/Berln", "(did you mean 'Europe/Berlin'?)"),
        ("x" * 300, "unknown time zone 'xxxx"),
        ("\ud800", r"unknown time zone '\ud800'"),
    ],
)
def test_other_zones_are_refused_with_a_suggestion(zone: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        compile_query(MetricRequest(("error_count",), timezone=zone), load_registry())
    assert message in str(raised.value) and raised.value.code == "INVALID_ARGUMENT"
    assert len(str(raised.value)) < 400


def test_a_huge_name_is_refused_quickly() -> None:
    with pytest.raises(InvalidRequest, match=r"\.\.\.'; use an IANA name"):
        check_time_zone("Europe/" * 20_000)
