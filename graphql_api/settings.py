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

from metrics.result_cache import MEMORY, REDIS_SCHEMES, CacheSettings

ROLES = ("viewer", "analyst", "admin")
RESEARCH = "research"
"""The anonymised-data role (see docs in graphql_api.auth): viewer's rights over a k-anonymous view."""
WAREHOUSE_ENV = "GRACE_METRICS_WAREHOUSE"
DEFAULT_WAREHOUSE = "duckdb:///grace-warehouse.duckdb"


class SettingsError(ValueError):
    """An environment variable holds a value the server cannot use."""


class ListenError(Exception):
    """The server cannot listen where it was told to (``--host``, ``--port``): taken, or privileged."""


def _api_keys(text: str) -> dict[str, str]:
    """``key:role,sha256:HEX:role``; a key without a role is a viewer. Digest entries keep their ``sha256:`` prefix."""
    keys = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        digest = item.startswith("sha256:")
        key, _, role = item.removeprefix("sha256:").partition(":")
        role = role or "viewer"
        if not key or role not in (*ROLES, RESEARCH) or (digest and not _is_sha256(key)):
            raise SettingsError(
                f"GRACE_METRICS_API_KEYS: {item!r} is not KEY:ROLE or sha256:HEXDIGEST:ROLE with a role of "
                f"{', '.join((*ROLES, RESEARCH))} (e.g. 's3cret:analyst,sha256:9f86d0...:viewer')"
            )
        keys["sha256:" + key.lower() if digest else key] = role
    return keys


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)


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
    """API key (or ``sha256:HEX`` digest of one) -> role; no keys and no token key mean every caller is admin."""
    access: AccessSettings = field(default_factory=lambda: AccessSettings())
    rollups: bool = True
    """Answer from rollups where they give exactly the facts' answer (``GRACE_METRICS_ROLLUPS=off``: never)."""
    cache: CacheSettings | None = CacheSettings()
    """The result cache (``metrics.result_cache``); None: off."""

    @property
    def audit_url(self) -> str:
        return self.access.audit_url or self.warehouse_url

    def writes_warehouse(self, *, runs_etl: bool) -> bool:
        """Whether the server writes its warehouse (the ETL it runs, or the audit log kept there): a DuckDB file is
        then opened read-write, and no other process may open it meanwhile."""
        return runs_etl or self.audit_url == self.warehouse_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "warehouse_url": env.get(WAREHOUSE_ENV, DEFAULT_WAREHOUSE),
            "api_keys": _api_keys(env.get("GRACE_METRICS_API_KEYS", "")),
            "access": AccessSettings.from_env(env),
            "rollups": _flag(env, "GRACE_METRICS_ROLLUPS", True),
            "cache": _cache(env),
        }
        for name, (variable, parse, what) in _NUMBERS.items():
            value = _positive(env, variable, parse, what)
            if value is not None:
                values[name] = value
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)  # type: ignore[arg-type]


CACHE_OFF = "off"
_CACHE_SIZES = {
    "max_entries": ("GRACE_METRICS_CACHE_ENTRIES", int, "a whole number"),
    "max_bytes": ("GRACE_METRICS_CACHE_BYTES", int, "a whole number of bytes"),
    "max_entry_bytes": ("GRACE_METRICS_CACHE_ENTRY_BYTES", int, "a whole number of bytes"),
}


def _cache(env: Mapping[str, str]) -> CacheSettings | None:
    """``GRACE_METRICS_CACHE_URL``: unset or ``memory://`` (in this process), ``redis://HOST:PORT/DB``, or ``off``."""
    url = env.get("GRACE_METRICS_CACHE_URL", "").strip() or MEMORY
    if url == CACHE_OFF:
        return None
    if url != MEMORY and not url.startswith(REDIS_SCHEMES):
        raise SettingsError(
            f"GRACE_METRICS_CACHE_URL: {url!r} is not {MEMORY}, a Redis URL ({', '.join(REDIS_SCHEMES)}...) "
            f"or {CACHE_OFF} (e.g. 'redis://127.0.0.1:6379/0')"
        )
    sizes = {name: _positive(env, *spec) for name, spec in _CACHE_SIZES.items()}
    return CacheSettings(url=url, **{name: int(value) for name, value in sizes.items() if value is not None})


@dataclass(frozen=True)
class AccessSettings:
    """Signed tokens, k-anonymity and the audit log (``../shared/spec/access.md``)."""

    jwt_secret: str | None = None
    """HS256 shared secret."""
    jwt_public_key: str | None = None
    """PEM public key for RS256 or ES256."""
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    k_anonymity: int = 5
    audit_fail_open: bool = False
    """Serve a request whose audit entry could not be written (the embedded demo); otherwise it fails INTERNAL."""
    audit_durable: bool = True
    """Wait for each audit commit to reach disk; false trades the last moments before a database crash for speed
    (PostgreSQL's synchronous_commit off, for the audit transaction only)."""
    audit_url: str | None = None
    """Where the audit log is kept; None: in the warehouse. Servers sharing one DuckDB file read-only keep it
    elsewhere, since a DuckDB file has one writing process."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AccessSettings:
        k = _positive(env, "GRACE_METRICS_K_ANONYMITY", int, "a whole number")
        return cls(
            jwt_secret=env.get("GRACE_METRICS_JWT_SECRET") or None,
            jwt_public_key=env.get("GRACE_METRICS_JWT_PUBLIC_KEY") or None,
            jwt_audience=env.get("GRACE_METRICS_JWT_AUDIENCE") or None,
            jwt_issuer=env.get("GRACE_METRICS_JWT_ISSUER") or None,
            k_anonymity=int(k) if k is not None else 5,
            audit_fail_open=_flag(env, "GRACE_METRICS_AUDIT_FAIL_OPEN", False),
            audit_durable=_flag(env, "GRACE_METRICS_AUDIT_DURABLE", True),
            audit_url=env.get("GRACE_METRICS_AUDIT_URL") or None,
        )

    @property
    def tokens(self) -> bool:
        return bool(self.jwt_secret or self.jwt_public_key)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name, "").strip().lower()
    if text in ("", "true", "1", "on", "false", "0", "off"):
        return default if not text else text in ("true", "1", "on")
    raise SettingsError(f"{name}: {text!r} is not true or false (on or off)")
