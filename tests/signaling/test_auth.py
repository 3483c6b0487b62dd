"""Token issuing/verification and refusal of connections without a valid token."""

from __future__ import annotations

import time

import jwt
import pytest
import socketio

from rooms.roles import Role
from signaling.auth import AuthError, TokenAuthority
from tests.conftest import TEST_SECRET, RunningServer


def test_round_trip_keeps_claims(authority: TokenAuthority) -> None:
    token = authority.issue(Role.SPECIALIST, "dr-1", "Dr One", ["ophthalmology", "paediatrics"])
    identity = authority.verify(token)
    assert identity.role is Role.SPECIALIST
    assert identity.subject == "dr-1"
    assert identity.name == "Dr One"
    assert identity.services == {"ophthalmology", "paediatrics"}
    assert identity.covers("paediatrics") and not identity.covers("counselling")


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, "token_missing"),
        ("", "token_missing"),
        ("not-a-jwt", "token_invalid"),
        (TokenAuthority("another-secret-" + "y" * 40).issue(Role.ADMIN, "a"), "token_invalid"),
        (TokenAuthority(TEST_SECRET).issue(Role.ADMIN, "a", ttl_s=-60), "token_expired"),
    ],
    ids=["none", "empty", "garbage", "forged", "expired"],
)
def test_bad_tokens_are_refused_with_a_reason(
    authority: TokenAuthority, token: str | None, code: str
) -> None:
    with pytest.raises(AuthError) as caught:
        authority.verify(token)
    assert caught.value.code == code


def test_unknown_role_and_guest_without_consultation_are_refused() -> None:
    now = int(time.time())
    base = {"iss": "teleconsult", "sub": "x", "iat": now, "exp": now + 60}
    for claims in ({**base, "role": "janitor"}, {**base, "role": "guest"}):
        token = jwt.encode(claims, TEST_SECRET, algorithm="HS256")
        with pytest.raises(AuthError):
            TokenAuthority(TEST_SECRET).verify(token)


def test_the_servers_own_system_role_is_never_granted_nor_accepted(
    authority: TokenAuthority,
) -> None:
    with pytest.raises(ValueError, match="system"):
        authority.issue(Role.SYSTEM, "system")
    now = int(time.time())
    claims = {"iss": "teleconsult", "sub": "system", "role": "system", "iat": now, "exp": now + 60}
    with pytest.raises(AuthError, match="no token may carry"):
        authority.verify(jwt.encode(claims, TEST_SECRET, algorithm="HS256"))


def test_none_algorithm_is_refused() -> None:
    now = int(time.time())
    claims = {"iss": "teleconsult", "sub": "x", "role": "admin", "iat": now, "exp": now + 60}
    token = jwt.encode(claims, key=None, algorithm="none")
    with pytest.raises(AuthError):
        TokenAuthority(TEST_SECRET).verify(token)


async def test_valid_token_connects(server: RunningServer) -> None:
    client = socketio.AsyncClient()
    await client.connect(server.url, auth={"token": server.token(Role.OUTLET, "outlet-1")})
    assert client.connected
    await client.disconnect()


@pytest.mark.parametrize(
    ("auth", "code"),
    [
        (None, "token_missing"),
        ({"token": "forged.token.value"}, "token_invalid"),
        ({"token": TokenAuthority("wrong-" + "z" * 40).issue(Role.ADMIN, "a")}, "token_invalid"),
        ({"token": TokenAuthority(TEST_SECRET).issue(Role.ADMIN, "a", ttl_s=-60)}, "token_expired"),
    ],
    ids=["missing", "garbage", "forged", "expired"],
)
async def test_invalid_tokens_are_refused_with_reason(
    server: RunningServer, auth: dict[str, str] | None, code: str
) -> None:
    client = socketio.AsyncClient(reconnection=False)
    refused: list[object] = []
    client.on("connect_error", refused.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(server.url, auth=auth, wait_timeout=5)
    assert refused and isinstance(refused[0], dict)
    assert refused[0]["data"] == {"code": code}
    assert refused[0]["message"]
    assert not client.connected
