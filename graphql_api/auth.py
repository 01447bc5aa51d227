"""Who is calling: an API key (compared by its SHA-256 digest, in constant time) or a signed JWT.

Keys are never kept in clear: a ``KEY:ROLE`` setting is hashed when the
server starts, and a ``sha256:HEX:ROLE`` setting never held the key at all.
Every presented key is hashed and compared with every stored digest, so the
time taken says nothing about which digest came close.

A token must be signed (HS256 with ``GRACE_METRICS_JWT_SECRET``, or RS256 /
ES256 with ``GRACE_METRICS_JWT_PUBLIC_KEY``), carry ``exp``, and pass
``nbf``, ``aud`` and ``iss`` with 30 s of clock skew. ``alg: none`` is never
accepted: the accepted algorithms are fixed by the key configured, not by the
token's header. A refusal says what kind of problem the token has (expired,
not yet valid, not for this server, not signed by a key we trust) but never
what the server expected.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from graphql_api.settings import RESEARCH, ROLES, Settings

SKEW_SECONDS = 30
_RANKS = {"viewer": 0, RESEARCH: 0, "analyst": 1, "admin": 2}
"""Research reads what a viewer may (through its anonymised view), never more."""


class AuthError(Exception):
    """Credentials were sent but do not authenticate; the message is safe to show to anyone."""


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: ``id`` is the token's ``sub`` or the key's fingerprint, for the audit log."""

    id: str
    role: str
    groups: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict)

    def allows(self, role: str) -> bool:
        return _RANKS[self.role] >= _RANKS[role]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


ANONYMOUS_ADMIN = Caller("local", "admin")
"""Every caller when no key and no token key is configured (the server then listens on loopback only)."""


def fingerprint(key: str) -> str:
    """How a key appears in logs: the first 12 hex digits of its SHA-256, enough to tell keys apart."""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:12]


class Authenticator:
    """Built once per server from the settings; ``authenticate`` runs per request."""

    def __init__(self, settings: Settings) -> None:
        self._digests = [
            (bytes.fromhex(key.removeprefix("sha256:")) if key.startswith("sha256:") else _digest(key), role)
            for key, role in settings.api_keys.items()
        ]
        access = settings.access
        self._key: Any = access.jwt_public_key or access.jwt_secret
        self._algorithms = ["RS256", "ES256"] if access.jwt_public_key else ["HS256"]
        self._audience = access.jwt_audience
        self._issuer = access.jwt_issuer
        self.required = bool(self._digests) or self._key is not None

    def authenticate(self, headers: Mapping[str, str]) -> Caller | None:
        """The caller, or None when no credentials were sent; raises ``AuthError`` for bad ones."""
        if not self.required:
            return ANONYMOUS_ADMIN
        authorization = headers.get("authorization", "")
        credential = (
            authorization[7:].strip() if authorization[:7].lower() == "bearer " else headers.get("x-api-key", "")
        )
        if not credential:
            return None
        role = self._key_role(credential)
        if role is not None:
            return Caller(fingerprint(credential), role)
        if self._key is not None and credential.count(".") == 2:
            return self._token(credential)
        raise AuthError("the API key or token is not valid")

    def _key_role(self, key: str) -> str | None:
        presented = _digest(key)
        found = None
        for digest, role in self._digests:  # no early exit: every digest is compared
            if hmac.compare_digest(presented, digest):
                found = role
        return found

    def _token(self, token: str) -> Caller:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=SKEW_SECONDS,
                options={"require": ["exp"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("the token is not valid yet") from None
        except (jwt.InvalidAudienceError, jwt.InvalidIssuerError):
            raise AuthError("the token was not issued for this server") from None
        except jwt.MissingRequiredClaimError:
            raise AuthError("the token has no expiry (exp); tokens must expire") from None
        except jwt.InvalidTokenError:  # bad signature, alg none or another algorithm, malformed
            raise AuthError("the token is not signed by a trusted key") from None
        return _caller(claims)


def _caller(claims: Mapping[str, Any]) -> Caller:
    role = claims.get("role", "viewer")
    groups = claims.get("groups", [])
    if role not in (*ROLES, RESEARCH):
        raise AuthError(f"the token's role must be one of {', '.join((*ROLES, RESEARCH))}")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise AuthError("the token's groups claim must be a list of group names")
    attributes = {k: v for k, v in claims.items() if k not in ("exp", "nbf", "iat", "aud", "iss", "jti")}
    return Caller(str(claims.get("sub", "token")), role, tuple(groups), attributes)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def check_exposure(settings: Settings, host: str, *, insecure: bool) -> None:
    """Without keys or a token key every caller is admin: refuse to serve that beyond this machine unless told to."""
    if insecure or settings.api_keys or settings.access.tokens or _is_loopback(host):
        return
    raise AuthError(
        f"refusing to listen on {host} without authentication: every caller would be admin. Set "
        "GRACE_METRICS_API_KEYS or GRACE_METRICS_JWT_SECRET / GRACE_METRICS_JWT_PUBLIC_KEY, listen on 127.0.0.1, "
        "or pass --insecure if this network is trusted"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
