"""Time-limited TURN credentials in the TURN REST API scheme (coturn's ``use-auth-secret``).

The username is ``<expiry unix time>:<subject>`` and the password is
``base64(HMAC-SHA1(secret, username))``: coturn recomputes the password from the username with
the same shared secret and refuses the allocation once the expiry has passed. Nothing here
talks to the network; the clock is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from dataclasses import dataclass, field

# Refresh once this share of a credential's lifetime has passed: a 4 h credential is renewed
# an hour before it expires, a 10 s test credential 2.5 s before.
REFRESH_AT = 0.75
MIN_TTL_S = 1


@dataclass(frozen=True)
class TurnCredentials:
    """One minted username/password pair and when coturn stops accepting it."""

    username: str
    password: str = field(repr=False)
    expires_at: int


def turn_password(secret: str, username: str) -> str:
    """``base64(HMAC-SHA1(secret, username))``, as coturn computes it."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def mint_credentials(secret: str, subject: str, expires_at: int) -> TurnCredentials:
    """Credentials for ``subject`` valid until ``expires_at`` (unix seconds)."""
    username = f"{expires_at}:{subject}"
    return TurnCredentials(username, turn_password(secret, username), expires_at)


@dataclass(frozen=True)
class TurnPolicy:
    """Which TURN servers clients get, with which secret, for how long at most."""

    urls: tuple[str, ...]
    secret: str = field(repr=False)
    max_ttl_s: float

    def expiry_for(self, token_expires_at: float, now: float) -> int:
        """The credential expiry: the token's own expiry, but at most ``max_ttl_s`` from now."""
        expiry = min(token_expires_at, now + self.max_ttl_s)
        return max(math.floor(expiry), math.ceil(now) + MIN_TTL_S)

    def credentials(self, subject: str, token_expires_at: float, now: float) -> TurnCredentials:
        return mint_credentials(self.secret, subject, self.expiry_for(token_expires_at, now))

    def ice_server(self, credentials: TurnCredentials) -> dict[str, object]:
        """The ``RTCIceServer`` entry a browser takes as it is."""
        return {
            "urls": list(self.urls),
            "username": credentials.username,
            "credential": credentials.password,
        }


def refresh_delay(expires_at: float, now: float) -> float:
    """Seconds from ``now`` until credentials expiring at ``expires_at`` should be renewed."""
    return max(0.0, (expires_at - now) * REFRESH_AT)
