"""Signed access tokens (JWT, HS256 with the server secret) and the identity they carry."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import jwt

from rooms.roles import Role

ISSUER = "teleconsult"
ALGORITHM = "HS256"
LEEWAY_S = 5
MIN_SECRET_BYTES = 32


class AuthError(Exception):
    """A token was missing, malformed, forged or expired; ``code`` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Identity:
    """Who is on the other end of a connection, as proven by its token."""

    subject: str
    role: Role
    name: str
    services: frozenset[str]
    consultation_id: str | None
    expires_at: float
    token_id: str

    def covers(self, service: str) -> bool:
        """Whether this clinician takes consultations for ``service``."""
        return service in self.services


class TokenAuthority:
    """Issues and verifies tokens with one secret."""

    def __init__(self, secret: str) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"a token secret needs at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def issue(
        self,
        role: Role,
        subject: str,
        name: str | None = None,
        services: Iterable[str] = (),
        ttl_s: float = 8 * 3600,
        consultation_id: str | None = None,
    ) -> str:
        """Return a signed token for ``subject`` in ``role`` that expires after ``ttl_s``."""
        if not role.grantable:
            raise ValueError(f"no token may carry the {role.value} role")
        if role is Role.GUEST and not consultation_id:
            raise ValueError("a guest token must name its consultation")
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": ISSUER,
            "sub": subject,
            "role": role.value,
            "name": name or subject,
            "services": sorted(set(services)),
            "iat": now,
            "exp": now + int(ttl_s),
            "jti": uuid.uuid4().hex,
        }
        if consultation_id:
            claims["cid"] = consultation_id
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: object) -> Identity:
        """Check signature, expiry and claims; raise :class:`AuthError` with a reason otherwise."""
        if not isinstance(token, str) or not token:
            raise AuthError("token_missing", "a token is required to connect")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token_expired", "the token has expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError("token_invalid", "the token signature is not valid") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("token_invalid", f"the token is not valid: {exc}") from exc
        return _identity_from_claims(claims)


def _identity_from_claims(claims: dict[str, object]) -> Identity:
    try:
        role = Role(str(claims.get("role")))
    except ValueError as exc:
        raise AuthError("token_invalid", "the token names no known role") from exc
    if not role.grantable:
        raise AuthError("token_invalid", "the token names a role no token may carry")
    services = claims.get("services", [])
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        raise AuthError("token_invalid", "the token's services must be a list of names")
    consultation_id = claims.get("cid")
    if role is Role.GUEST and not isinstance(consultation_id, str):
        raise AuthError("token_invalid", "a guest token must name its consultation")
    expires_at = claims["exp"]
    return Identity(
        subject=str(claims["sub"]),
        role=role,
        name=str(claims.get("name") or claims["sub"]),
        services=frozenset(services),
        consultation_id=consultation_id if isinstance(consultation_id, str) else None,
        expires_at=float(expires_at) if isinstance(expires_at, int | float) else 0.0,
        token_id=str(claims.get("jti", "")),
    )
