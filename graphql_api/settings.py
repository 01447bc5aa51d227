"""Server settings, read once from the environment (and overridden by CLI flags).

A value that does not parse raises ``SettingsError`` naming the variable and
what it takes, so the command line can print it as one paragraph.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("viewer", "analyst", "admin")
WAREHOUSE_ENV = "GRACE_METRICS_WAREHOUSE"
DEFAULT_WAREHOUSE = "duckdb:///grace-warehouse.duckdb"


class SettingsError(ValueError):
    """An environment variable holds a value the server cannot use."""


class ListenError(Exception):
    """The server cannot listen where it was told to (``--host``, ``--port``): taken, or privileged."""


def _api_keys(text: str) -> dict[str, str]:
    """``key:role,key:role``; a key without a role is a viewer."""
    keys = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, role = item.partition(":")
        role = role or "viewer"
        if not key or role not in ROLES:
            raise SettingsError(
                f"GRACE_METRICS_API_KEYS: {item!r} is not KEY:ROLE with a role of {', '.join(ROLES)} "
                "(e.g. 's3cret:analyst,other:viewer')"
            )
        keys[key] = role
    return keys


def _positive(env: Mapping[str, str], name: str, parse: Callable[[str], float], what: str) -> float | None:
    text = env.get(name)
    if text is None:
        return None
    try:
        value = parse(text)
    except ValueError:
        value = 0
    if not (value > 0 and math.isfinite(value)):  # also refuses nan and inf
        raise SettingsError(f"{name}: {text!r} is not {what} greater than 0")
    return value


_NUMBERS = {
    "max_rows": ("GRACE_METRICS_MAX_ROWS", int, "a whole number"),
    "statement_timeout": ("GRACE_METRICS_STATEMENT_TIMEOUT", float, "a number of seconds"),
    "max_depth": ("GRACE_METRICS_MAX_DEPTH", int, "a whole number"),
    "max_aliases": ("GRACE_METRICS_MAX_ALIASES", int, "a whole number"),
    "max_cost": ("GRACE_METRICS_MAX_COST", int, "a whole number"),
    "max_tokens": ("GRACE_METRICS_MAX_TOKENS", int, "a whole number"),
    "max_body_bytes": ("GRACE_METRICS_MAX_BODY_BYTES", int, "a whole number of bytes"),
    "shutdown_timeout": ("GRACE_METRICS_SHUTDOWN_TIMEOUT", float, "a number of seconds"),
}


@dataclass(frozen=True)
class Settings:
    warehouse_url: str
    config_dirs: tuple[Path, ...] = ()
    max_rows: int = 10_000
    statement_timeout: float = 30.0
    max_depth: int = 12
    """Deepest selection an operation may nest (LIMIT_EXCEEDED past it)."""
    max_aliases: int = 50
    max_cost: int = 1_000
    """Most field selections an operation may hold once its fragments are expanded (LIMIT_EXCEEDED past it)."""
    max_tokens: int = 5_000
    """Largest document in GraphQL tokens; parsing stops there, so a huge query cannot hold the event loop."""
    max_body_bytes: int = 100_000
    """Largest request body; refused with 413 before it is parsed."""
    shutdown_timeout: float = 10.0
    """Seconds a stopping server (SIGTERM, Ctrl-C) waits for running requests before cancelling them."""
    api_keys: dict[str, str] = field(default_factory=dict)
    """API key -> role; empty means no authentication (every caller is admin)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "warehouse_url": env.get(WAREHOUSE_ENV, DEFAULT_WAREHOUSE),
            "api_keys": _api_keys(env.get("GRACE_METRICS_API_KEYS", "")),
        }
        for name, (variable, parse, what) in _NUMBERS.items():
            value = _positive(env, variable, parse, what)
            if value is not None:
                values[name] = value
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)  # type: ignore[arg-type]
