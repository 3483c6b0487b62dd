"""Sealed fields: AES-256-GCM under the recording keyring, bound to their row and field.

A sealed value is ``key id (16 ASCII hex) + nonce (12) + ciphertext with tag``. The associated
data names the table, the row's id and the field, so a sealed value copied into another row or
field does not open. Any key in the ring opens what it sealed; new values use the current key,
which is how keys rotate. Look-ups (a patient's card code) use :meth:`Sealer.lookup_hash`, an
HMAC under a random key kept sealed in the database itself (``record_keys``), so it survives
rotation of the keyring.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from recording.keys import Keyring
from records.errors import SealError

_KEY_ID_BYTES = 16
_NONCE_BYTES = 12
LOOKUP_KEY_BYTES = 32


def _context(table: str, row_id: str, field: str) -> bytes:
    return f"teleconsult:{table}:{row_id}:{field}".encode()


class Sealer:
    """Seals and opens field values; hashes look-up values."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._lookup_key: bytes | None = None

    def set_lookup_key(self, key: bytes) -> None:
        """The database's look-up key, once :class:`records.facade.Records` has opened it."""
        self._lookup_key = key

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def seal(self, value: str, table: str, row_id: str, field: str) -> bytes:
        return seal_bytes(self._keyring, value.encode(), _context(table, row_id, field))

    def open(self, sealed: bytes, table: str, row_id: str, field: str) -> str:
        return open_bytes(self._keyring, sealed, _context(table, row_id, field)).decode()

    def seal_optional(self, value: str | None, table: str, row_id: str, field: str) -> bytes | None:
        return None if value is None else self.seal(value, table, row_id, field)

    def open_optional(
        self, sealed: bytes | None, table: str, row_id: str, field: str
    ) -> str | None:
        return None if sealed is None else self.open(sealed, table, row_id, field)

    def lookup_hash(self, value: str) -> str:
        """A keyed hash of a look-up value (reveals nothing without the database's key)."""
        if self._lookup_key is None:
            raise SealError("the records database is not open yet")
        return hmac.new(self._lookup_key, value.encode(), hashlib.sha256).hexdigest()


def seal_bytes(keyring: Keyring, plaintext: bytes, context: bytes) -> bytes:
    """``plaintext`` sealed under the current key with ``context`` as associated data."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    key_id = keyring.current_id.encode()
    assert len(key_id) == _KEY_ID_BYTES
    return key_id + nonce + AESGCM(keyring.current_key).encrypt(nonce, plaintext, context)


def open_bytes(keyring: Keyring, sealed: bytes, context: bytes) -> bytes:
    """Open what :func:`seal_bytes` sealed; :class:`SealError` if it cannot be."""
    key_id = sealed[:_KEY_ID_BYTES].decode(errors="replace")
    key = keyring.key(key_id)
    if key is None:
        raise SealError(f"sealed with key {key_id}, which is not in the keyring")
    nonce = sealed[_KEY_ID_BYTES : _KEY_ID_BYTES + _NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, sealed[_KEY_ID_BYTES + _NONCE_BYTES :], context)
    except InvalidTag as exc:
        raise SealError("a sealed value does not open (tampered, or moved to another row)") from exc
