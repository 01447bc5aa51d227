"""Source values into warehouse values: UTC timestamps, booleans, numbers, JSON, user keys.

SQLite hands back text and integers, PostgreSQL typed values; both end here as
the same Python values. SQLite is dynamically typed, so any column can hold
text: the number parsers are what stop ``'fast'`` in an INTEGER column. A value
that does not fit raises ``ValueError`` with what was expected, and
``warehouse.etl.rows`` turns it into ``BadSourceValue``. These are the reference
for the bulk checks of ``warehouse.etl.parse``, which hand them the row they mark.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from decimal import Decimal
from typing import Any


def utc_timestamp(value: Any) -> datetime | None:
    """A naive UTC datetime from an ISO-8601 string or a datetime (naive ones are UTC already)."""
    if type(value) is str:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:  # surrounding blanks are rare: strip only then
            value = datetime.fromisoformat(value.strip())
    elif value is None:
        return None
    elif not isinstance(value, datetime):
        raise ValueError("an ISO-8601 timestamp")
    offset = value.utcoffset()
    if offset is not None:
        value = (value - offset).replace(tzinfo=None)
    return value


def boolean(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise ValueError("a boolean (0 or 1)")


def integer(value: Any) -> int:
    """An int; an integral float is accepted, a bool (an int to Python) is not."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise ValueError("an integer")


def real(value: Any) -> float:
    """A float from a float, an int or a ``Decimal`` (a NUMERIC column in PostgreSQL); never from a bool or text."""
    if type(value) is float:
        return value
    if type(value) is int or isinstance(value, Decimal):
        return float(value)
    raise ValueError("a number")


def json_value(value: Any) -> Any:
    """Parsed JSON; PostgreSQL drivers return ``jsonb`` already parsed."""
    if isinstance(value, (str, bytes)):
        return json.loads(value)
    return value


class UserKeyer:
    """Keyed hashing of user ids: the warehouse never holds a raw ``user_id``.

    HMAC-SHA256 with a configured secret, because an unkeyed hash of a user id
    can be reversed by hashing every candidate id.
    """

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()
        self._cache: dict[str, str] = {}

    @property
    def fingerprint(self) -> str:
        """Identifies the secret without revealing it, so a warehouse can refuse a different one."""
        return hmac.new(self._secret, b"grace-metrics key fingerprint", hashlib.sha256).hexdigest()[:16]

    def __call__(self, user_id: str | None) -> str | None:
        if user_id is None:
            return None
        key = self._cache.get(user_id)
        if key is None:
            key = hmac.new(self._secret, user_id.encode(), hashlib.sha256).hexdigest()
            self._cache[user_id] = key
        return key
