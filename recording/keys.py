"""Recording keys: a keyring of AES-256 keys by key id, loaded from settings or a 0600 key file.

A key's id is a fingerprint of the key itself (so an id can never be attached to the wrong key).
New recordings use the *current* key; every key in the ring still decrypts the recordings it
sealed, which is how keys rotate: add a new key (it becomes current), keep the old ones.

Key file format: one base64-encoded 32-byte key per line, ``#`` comments; the last key is the
current one unless ``recording_key`` names another.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

KEY_BYTES = 32
_ID_CONTEXT = b"teleconsult recording key id\x00"


class RecordingKeyError(ValueError):
    """No usable recording key: missing in production, malformed, or a key file others can read."""


def key_id_of(key: bytes) -> str:
    """The public id of a key: a truncated SHA-256 fingerprint (it reveals nothing of the key)."""
    return hashlib.sha256(_ID_CONTEXT + key).hexdigest()[:16]


def parse_key(encoded: str) -> bytes:
    """A 32-byte AES key from its base64 form."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except ValueError as exc:
        raise RecordingKeyError("a recording key must be base64") from exc
    if len(key) != KEY_BYTES:
        raise RecordingKeyError("a recording key must be 32 bytes (base64 of 32 random bytes)")
    return key


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


@dataclass(frozen=True)
class Keyring:
    """Keys by id and which one seals new recordings."""

    keys: Mapping[str, bytes]
    current_id: str

    @classmethod
    def of(cls, keys: list[bytes], current: bytes) -> Keyring:
        ring = {key_id_of(key): key for key in [*keys, current]}
        return cls(ring, key_id_of(current))

    @property
    def current_key(self) -> bytes:
        return self.keys[self.current_id]

    def key(self, key_id: str) -> bytes | None:
        return self.keys.get(key_id)

    def to_payload(self) -> dict[str, object]:
        """The ring as JSON (handed to the composite process on stdin, never argv)."""
        return {
            "current": self.current_id,
            "keys": {kid: encode_key(key) for kid, key in self.keys.items()},
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Keyring:
        keys = payload["keys"]
        assert isinstance(keys, Mapping)
        return cls({str(k): parse_key(str(v)) for k, v in keys.items()}, str(payload["current"]))


def default_key_file(recordings_dir: Path) -> Path:
    """Where development mode keeps its generated key: beside the recordings folder."""
    root = recordings_dir.resolve()
    return root.with_name(root.name + ".keys")


def read_key_file(path: Path) -> list[bytes]:
    """The keys in a key file, oldest first; refuses a file group or others can access."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise RecordingKeyError(f"recording key file {path} does not exist") from exc
    if stat.S_IMODE(mode) & 0o077:
        raise RecordingKeyError(
            f"recording key file {path} is accessible by other users: chmod 600 {path}"
        )
    keys = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if text:
            try:
                keys.append(parse_key(text))
            except RecordingKeyError as exc:
                raise RecordingKeyError(f"{path} line {number}: {exc}") from exc
    if not keys:
        raise RecordingKeyError(f"recording key file {path} holds no key")
    return keys


def add_key_to_file(path: Path) -> str:
    """Append a new random key (it becomes the current one); creates the file 0600 if needed."""
    key = secrets.token_bytes(KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, f"{encode_key(key)}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return key_id_of(key)


def load_keyring(
    key: str | None, key_file: Path | None, dev_key_file: Path, production: bool
) -> Keyring:
    """The keyring the settings describe.

    ``key`` (base64) is the current key when given; ``key_file`` holds older keys (or the current
    one). In production one of them is required; in development a key file is generated once
    at ``dev_key_file`` (0600) and reused.
    """
    current = parse_key(key) if key else None
    if key_file is None and current is None:
        if production:
            raise RecordingKeyError(
                "production mode needs a recording key: set TELECONSULT_RECORDING_KEY "
                "(base64 of 32 random bytes) or recording_key_file"
            )
        key_file = dev_key_file
        if not key_file.exists():
            key_id = add_key_to_file(key_file)
            logger.warning(
                "no recording key configured: generated key %s in %s (development only; "
                "keep this file, recordings cannot be read without it)",
                key_id,
                key_file,
            )
    keys = read_key_file(key_file) if key_file is not None else []
    if current is None:
        current = keys[-1]
    return Keyring.of(keys, current)
