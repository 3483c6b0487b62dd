"""TURN REST API credentials: the HMAC, the username, the lifetime rules and the refresh timing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from typing import Any

import pytest

from rooms.roles import Role
from signaling.auth import Identity
from signaling.ice_servers import IceServerIssuer
from signaling.turn import TurnPolicy, mint_credentials, refresh_delay, turn_password

SECRET = "north-wind-turn-secret"


def identity(expires_at: float, subject: str = "outlet-0042") -> Identity:
    return Identity(subject, Role.OUTLET, "Xinhua Rd", frozenset(), None, expires_at, "jti-1")


def test_password_is_base64_hmac_sha1_of_the_username() -> None:
    username = "1700000000:outlet-0042"
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()
    ).decode()
    assert turn_password(SECRET, username) == expected
    # The same vector computed with `openssl dgst -sha1 -hmac ... -binary | base64`.
    assert expected == "elSLn2FgyDH5Al1xkyQnXuoeVCc="


def test_minted_username_is_expiry_colon_subject() -> None:
    credentials = mint_credentials(SECRET, "dr-li", 1_800_000_000)
    assert credentials.username == "1800000000:dr-li"
    assert credentials.expires_at == 1_800_000_000
    assert credentials.password == turn_password(SECRET, "1800000000:dr-li")
    assert credentials.password not in repr(credentials)


def test_lifetime_is_the_tokens_remaining_life_but_at_most_the_ttl() -> None:
    policy = TurnPolicy(("turn:turn.example.org:3478?transport=udp",), SECRET, 4 * 3600)
    now = 1_000_000.0
    assert policy.expiry_for(now + 10 * 3600, now) == now + 4 * 3600
    assert policy.expiry_for(now + 600.5, now) == now + 600
    # An (almost) expired token still gets a credential that is valid for a moment, never one
    # that is already expired when it arrives.
    assert policy.expiry_for(now - 5, now) == now + 1
    assert policy.secret not in repr(policy)


def test_ice_server_entry_lists_every_url_with_the_credentials() -> None:
    urls = ("turn:t.example.org:3478?transport=udp", "turns:t.example.org:443?transport=tcp")
    policy = TurnPolicy(urls, SECRET, 3600)
    credentials = policy.credentials("dr-li", 2_000_000_000, 1_000_000.0)
    assert policy.ice_server(credentials) == {
        "urls": list(urls),
        "username": "1003600:dr-li",
        "credential": turn_password(SECRET, "1003600:dr-li"),
    }


def test_refresh_is_due_when_three_quarters_of_the_lifetime_have_passed() -> None:
    assert refresh_delay(1000.0 + 4 * 3600, 1000.0) == 3 * 3600
    assert refresh_delay(990.0, 1000.0) == 0.0


def test_issuer_without_turn_hands_out_the_static_servers_only() -> None:
    issuer = IceServerIssuer([{"urls": "stun:stun.example.org"}], None)
    servers, expires_at = issuer.servers_for(identity(2_000_000_000))
    assert servers == [{"urls": "stun:stun.example.org"}]
    assert expires_at is None


async def test_issuer_refreshes_before_each_expiry_until_the_token_runs_out() -> None:
    policy = TurnPolicy(("turn:127.0.0.1:3478?transport=tcp",), SECRET, 2)
    issuer = IceServerIssuer([{"urls": "stun:stun.example.org"}], policy, "relay")
    token_expires_at = time.time() + 4.5
    sent: list[tuple[float, dict[str, Any], str]] = []

    async def emit(event: str, payload: dict[str, Any], sid: str) -> None:
        assert event == "session.ice_servers"
        sent.append((time.time(), payload, sid))

    fields = issuer.ready_fields("sid-1", identity(token_expires_at), emit)
    assert fields["ice_transport_policy"] == "relay"
    assert fields["ice_servers"][0] == {"urls": "stun:stun.example.org"}
    previous = fields["ice_servers_expire_at"]
    assert fields["ice_servers"][1]["username"] == f"{previous}:outlet-0042"
    await asyncio.sleep(token_expires_at - time.time() + 1)
    await issuer.close()
    assert len(sent) >= 2
    for at, payload, sid in sent:
        assert sid == "sid-1"
        assert at < previous, "a refresh arrived after the credentials it replaces expired"
        assert payload["expires_at"] > previous
        turn = payload["ice_servers"][1]
        assert turn["username"] == f"{payload['expires_at']}:outlet-0042"
        assert turn["credential"] == turn_password(SECRET, turn["username"])
        previous = payload["expires_at"]
    # The last credentials last exactly as long as the token; then the refreshing stops.
    assert previous == int(token_expires_at)


def test_issuer_refuses_an_unknown_transport_policy() -> None:
    with pytest.raises(ValueError, match="policy"):
        IceServerIssuer([], None, "direct")
