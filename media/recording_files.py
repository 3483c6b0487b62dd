"""Recording files at rest: checksums and optional chunked AES-GCM encryption with range reads.

Encrypted layout (``.enc``): a header ``MAGIC | file nonce (8) | chunk size (4) | plain size (8)``
followed by one AES-GCM box per chunk of ``chunk size`` plaintext bytes (ciphertext + 16-byte tag).
Chunk ``i`` uses nonce ``file nonce | i`` (4 bytes, big endian) and authenticates the header, its
index and whether it is the last chunk, so chunks cannot be reordered, swapped between files or
truncated away unnoticed. Any byte range is served by decrypting only the chunks it touches.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"TCREC1\x00\x00"
CHUNK_SIZE = 64 * 1024
_HEADER = struct.Struct(">8s8sIQ")
_TAG_SIZE = 16
_COPY_BLOCK = 1024 * 1024


class RecordingFileError(Exception):
    """A stored recording file is damaged, truncated or was sealed with another key."""


def parse_key(encoded: str | None) -> bytes | None:
    """The AES-256 key from its base64 form in the settings (``None`` leaves files plain)."""
    if not encoded:
        return None
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise ValueError("recording_key must be base64") from exc
    if len(key) != 32:
        raise ValueError("recording_key must be 32 bytes (base64 of 32 random bytes)")
    return key


@dataclass(frozen=True)
class StoredFile:
    """A finished file as recorded in the index: name relative to the recordings folder."""

    name: str
    size: int
    sha256: str
    encrypted: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "encrypted": self.encrypted,
        }


def seal_file(
    plain: Path, key: bytes | None, root: Path, chunk_size: int = CHUNK_SIZE
) -> StoredFile:
    """Checksum ``plain``; with a key, replace it by its encrypted form (blocking: use a thread)."""
    digest = hashlib.sha256()
    size = plain.stat().st_size
    if key is None:
        with plain.open("rb") as source:
            while block := source.read(_COPY_BLOCK):
                digest.update(block)
        return StoredFile(str(plain.relative_to(root)), size, digest.hexdigest(), False)
    sealed = plain.with_name(plain.name + ".enc")
    partial = sealed.with_name(sealed.name + ".part")
    header = _HEADER.pack(MAGIC, secrets.token_bytes(8), chunk_size, size)
    aead = AESGCM(key)
    chunks = max(1, -(-size // chunk_size))
    with plain.open("rb") as source, partial.open("wb") as target:
        target.write(header)
        for index in range(chunks):
            block = source.read(chunk_size)
            digest.update(block)
            target.write(
                aead.encrypt(_nonce(header, index), block, _aad(header, index, index == chunks - 1))
            )
        target.flush()
        os.fsync(target.fileno())
    os.replace(partial, sealed)
    plain.unlink()
    return StoredFile(str(sealed.relative_to(root)), size, digest.hexdigest(), True)


def _nonce(header: bytes, index: int) -> bytes:
    return header[8:16] + struct.pack(">I", index)


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">QB", index, 1 if final else 0)


class DecryptingReader(io.RawIOBase):
    """A seekable, read-only view of the plaintext of an encrypted recording (PyAV can open it)."""

    def __init__(self, path: Path, key: bytes) -> None:
        self._file = path.open("rb")
        header = self._file.read(_HEADER.size)
        try:
            magic, _, chunk_size, size = _HEADER.unpack(header)
        except struct.error as exc:
            self._file.close()
            raise RecordingFileError(f"{path.name}: no recording header") from exc
        if magic != MAGIC or chunk_size <= 0:
            self._file.close()
            raise RecordingFileError(f"{path.name}: not an encrypted recording")
        self._header = header
        self._aead = AESGCM(key)
        self.chunk_size = chunk_size
        self.size = size
        self._chunks = max(1, -(-size // chunk_size))
        self._position = 0
        self._cached: tuple[int, bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read_at(self._position, len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` plaintext bytes from ``offset``, decrypting only the chunks needed."""
        parts = []
        end = min(self.size, offset + length)
        while offset < end:
            index, start = divmod(offset, self.chunk_size)
            chunk = self._chunk(index)
            piece = chunk[start : start + end - offset]
            parts.append(piece)
            offset += len(piece)
        return b"".join(parts)

    def _chunk(self, index: int) -> bytes:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        self._file.seek(_HEADER.size + index * (self.chunk_size + _TAG_SIZE))
        box = self._file.read(self.chunk_size + _TAG_SIZE)
        try:
            plain = self._aead.decrypt(
                _nonce(self._header, index),
                box,
                _aad(self._header, index, index == self._chunks - 1),
            )
        except Exception as exc:  # cryptography raises InvalidTag without a message
            raise RecordingFileError(f"chunk {index} does not authenticate") from exc
        self._cached = (index, plain)
        return plain

    def close(self) -> None:
        self._file.close()
        super().close()


def open_plain(path: Path, key: bytes | None) -> io.RawIOBase | io.BufferedReader:
    """A seekable binary reader of a stored file's plaintext (decrypting when it is sealed)."""
    if path.name.endswith(".enc"):
        if key is None:
            raise RecordingFileError(f"{path.name} is encrypted and no recording_key is configured")
        return DecryptingReader(path, key)
    return path.open("rb")


def plain_size(path: Path) -> int:
    """The plaintext size of a stored file, from the header when it is encrypted."""
    if path.name.endswith(".enc"):
        with path.open("rb") as handle:
            return int(_HEADER.unpack(handle.read(_HEADER.size))[3])
    return path.stat().st_size


def read_range(
    path: Path, key: bytes | None, start: int, end: int, block: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """Plaintext bytes ``[start, end)`` in blocks (blocking: iterate in a thread)."""
    with open_plain(path, key) as reader:
        reader.seek(start)
        remaining = end - start
        while remaining > 0:
            data = reader.read(min(block, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data
