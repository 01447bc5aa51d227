"""Server settings, read once from the environment (and overridden by CLI flags)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("viewer", "analyst", "admin")


def _api_keys(text: str) -> dict[str, str]:
    """``key:role,key:role``; a key without a role is a viewer."""
    keys = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, role = item.partition(":")
        role = role or "viewer"
        if role not in ROLES:
            raise ValueError(f"GRACE_METRICS_API_KEYS: role {role!r} is not one of {', '.join(ROLES)}")
        keys[key] = role
    return keys


@dataclass(frozen=True)
class Settings:
    warehouse_url: str
    config_dirs: tuple[Path, ...] = ()
    max_rows: int = 10_000
    statement_timeout: float = 30.0
    max_depth: int = 12
    max_aliases: int = 50
    api_keys: dict[str, str] = field(default_factory=dict)
    """API key -> role; empty means no authentication (every caller is admin)."""

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {
            "warehouse_url": env.get("GRACE_METRICS_WAREHOUSE", "duckdb:///grace-warehouse.duckdb"),
            "max_rows": int(env.get("GRACE_METRICS_MAX_ROWS", "10000")),
            "statement_timeout": float(env.get("GRACE_METRICS_STATEMENT_TIMEOUT", "30")),
            "api_keys": _api_keys(env.get("GRACE_METRICS_API_KEYS", "")),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)  # type: ignore[arg-type]
