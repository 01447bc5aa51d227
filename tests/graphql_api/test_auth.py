"""Callers: hashed API keys and signed tokens, each way a token can be wrong, and refusing to serve unauthenticated
beyond loopback."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from graphql_api.auth import Authenticator, AuthError, check_exposure
from graphql_api.cli import main
from graphql_api.settings import AccessSettings, Settings, SettingsError
from tests.graphql_api.conftest import open_api

SECRET = "a-shared-secret-of-at-least-32-bytes!"


def _settings(**access: Any) -> Settings:
    return Settings(warehouse_url="", access=AccessSettings(**access))


def _token(key: Any = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    payload = {"sub": "ada", "role": "analyst", "groups": ["support"], "exp": time.time() + 600, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=algorithm)


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_a_valid_token_gives_sub_role_groups_and_claims() -> None:
    caller = Authenticator(_settings(jwt_secret=SECRET)).authenticate(_bearer(_token(team="ops")))
    assert caller is not None
    assert (caller.id, caller.role, caller.groups, caller.claims["team"]) == ("ada", "analyst", ("support",), "ops")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": -31}, "the token has expired"),
        ({"nbf": 31}, "the token is not valid yet"),
        ({"aud": "another-service"}, "the token was not issued for this server"),
        ({"iss": "someone-else"}, "the token was not issued for this server"),
        ({"exp": None}, "tokens must expire"),
        ({"role": "superuser"}, "the token's role must be one of"),
    ],
    ids=["expired", "future", "wrong-audience", "wrong-issuer", "no-exp", "unknown-role"],
)
def test_bad_tokens_are_refused_with_a_reason(claims: dict[str, Any], reason: str) -> None:
    authenticator = Authenticator(_settings(jwt_secret=SECRET, jwt_audience="grace", jwt_issuer="idp"))
    now = time.time()  # times are offsets, made absolute here: collection may run long before the test
    claims = {k: now + v if k in ("exp", "nbf") and v is not None else v for k, v in claims.items()}
    token = _token(**{"aud": "grace", "iss": "idp", **claims})
    with pytest.raises(AuthError, match=reason) as refused:
        authenticator.authenticate(_bearer(token))
    assert SECRET not in str(refused.value) and "grace" not in str(refused.value)


def test_clock_skew_of_30_seconds_is_tolerated() -> None:
    authenticator = Authenticator(_settings(jwt_secret=SECRET))
    assert authenticator.authenticate(_bearer(_token(exp=time.time() - 20, nbf=time.time() + 20))) is not None


def test_wrong_key_alg_none_and_tampering_are_all_untrusted() -> None:
    authenticator = Authenticator(_settings(jwt_secret=SECRET))
    wrong_key = _token(key="another-secret-of-at-least-32-bytes!!")
    unsigned = _token(key=None, algorithm="none")
    header, payload, signature = _token(role="viewer").split(".")
    admin_payload = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b'"viewer"', b'"admin"')
    ).decode()
    for token in (wrong_key, unsigned, f"{header}.{admin_payload}.{signature}", unsigned.rstrip(".") + ".x"):
        with pytest.raises(AuthError, match="not signed by a trusted key"):
            authenticator.authenticate(_bearer(token))


@pytest.mark.parametrize("kind", ["RS256", "ES256"])
def test_public_key_tokens(kind: str) -> None:
    private = rsa.generate_private_key(65537, 2048) if kind == "RS256" else ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    authenticator = Authenticator(_settings(jwt_public_key=public.decode()))
    caller = authenticator.authenticate(_bearer(_token(key=private, algorithm=kind)))
    assert caller is not None and caller.role == "analyst"
    with pytest.raises(AuthError, match="not signed by a trusted key"):  # an HS256 token signed with the public key
        authenticator.authenticate(_bearer(jwt.encode({"exp": time.time() + 60}, SECRET, algorithm="HS256")))


def test_api_keys_in_clear_or_as_sha256_digests() -> None:
    digest = hashlib.sha256(b"k2").hexdigest()
    settings = Settings.from_env({"GRACE_METRICS_API_KEYS": f"k1:viewer,sha256:{digest}:research"})
    assert f"sha256:{digest}" in settings.api_keys and "k2" not in settings.api_keys
    authenticator = Authenticator(settings)
    viewer = authenticator.authenticate({"x-api-key": "k1"})
    research = authenticator.authenticate(_bearer("k2"))
    assert viewer is not None and research is not None
    assert (viewer.role, research.role) == ("viewer", "research")
    assert viewer.id.startswith("key:") and "k1" not in viewer.id
    assert authenticator.authenticate({}) is None
    with pytest.raises(AuthError, match="not valid"):
        authenticator.authenticate(_bearer("k3"))
    with pytest.raises(SettingsError, match="sha256:HEXDIGEST:ROLE"):
        Settings.from_env({"GRACE_METRICS_API_KEYS": "sha256:abc:viewer"})


def test_unauthenticated_serving_is_loopback_only() -> None:
    open_settings = _settings()
    check_exposure(open_settings, "127.0.0.1", insecure=False)
    check_exposure(open_settings, "::1", insecure=False)
    check_exposure(open_settings, "0.0.0.0", insecure=True)
    check_exposure(_settings(jwt_secret=SECRET), "0.0.0.0", insecure=False)
    with pytest.raises(AuthError, match="--insecure"):
        check_exposure(open_settings, "0.0.0.0", insecure=False)


def test_serve_refuses_an_open_interface_before_doing_anything(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--warehouse", "duckdb:///nowhere.duckdb", "--host", "0.0.0.0"]) == 2
    assert "refusing to listen on 0.0.0.0 without authentication" in capsys.readouterr().err


async def test_over_http_a_bad_token_is_unauthorized_with_its_reason(duckdb_warehouse: str) -> None:
    async for api in open_api(duckdb_warehouse, access=AccessSettings(jwt_secret=SECRET)):
        expired = await api("{ metrics { rows { errorCount } } }", **_bearer(_token(exp=time.time() - 60)))
        assert expired["errors"][0]["extensions"]["code"] == "UNAUTHORIZED"
        assert expired["errors"][0]["message"] == "the token has expired"
        anonymous = await api('{ __type(name: "MetricRow") { fields { name } } }')  # no policies, still no names
        assert anonymous["data"] is None and anonymous["errors"][0]["extensions"]["code"] == "UNAUTHORIZED"
        fine = await api("{ metrics { rows { errorCount } } }", **_bearer(_token()))
        assert fine["data"]["metrics"]["rows"] == [{"errorCount": 20}]
