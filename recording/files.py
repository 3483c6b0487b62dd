"""Recording files at rest: encrypted as they are written, read back by decrypting ranges.

Layout: a header ``MAGIC | file id (16) | chunk size (4) | key id (16)`` and then one box per
``chunk size`` bytes of plaintext in fixed slots: ``nonce (12) | AES-GCM ciphertext | tag (16)``
(only the last box may be shorter). Each box authenticates the header, its index and whether
it is the last one, so boxes cannot be reordered, moved between files or cut off unnoticed.
Every time a box is (re)written it gets a fresh random nonce.

:class:`EncryptingWriter` is a seekable file object PyAV muxes into: bytes are kept in memory
until their chunk is full, and the unfinished tail box is rewritten on every write, so the
file on disk always decrypts to everything written so far. When the muxer seeks back (Matroska
writes its duration, seek head and segment size at the end), the box concerned is decrypted,
patched and sealed again. Closing marks the last box final; a killed process leaves the tail
unmarked, and :func:`seal_unfinished` (crash recovery) marks it. Plaintext never reaches disk.
Directories are 0700 and files 0600 whatever the umask.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from recording.keys import Keyring

MAGIC = b"TCREC2\x00\x00"
CHUNK_SIZE = 64 * 1024
ENCRYPTED_SUFFIX = ".enc"
_HEADER = struct.Struct(">8s16sI16s")
_NONCE_SIZE = 12
_TAG_SIZE = 16
_OVERHEAD = _NONCE_SIZE + _TAG_SIZE
_READ_BLOCK = 1024 * 1024


def safe_file_name(text: str, max_length: int) -> str:
    """``text`` as one file-system-safe path component: other characters become ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:max_length]


class RecordingFileError(Exception):
    """A stored recording file is damaged, truncated, or sealed with a key not in the keyring."""


def make_private_dir(folder: Path) -> None:
    """Create ``folder`` and missing parents, each 0700 (the umask cannot widen it)."""
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    folder.mkdir(parents=True, exist_ok=True)
    for created in [*missing, folder]:
        os.chmod(created, 0o700)


def restrict_tree(root: Path) -> int:
    """Make every folder under ``root`` 0700 and every file 0600 (what earlier versions left
    wider); returns how many were changed (blocking: use a thread)."""
    changed = 0
    for folder, _, files in os.walk(root):
        for path, mode in [(Path(folder), 0o700), *((Path(folder) / f, 0o600) for f in files)]:
            if stat.S_IMODE(path.lstat().st_mode) != mode and not path.is_symlink():
                os.chmod(path, mode)
                changed += 1
    return changed


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">QB", index, 1 if final else 0)


def _seal(aead: AESGCM, header: bytes, index: int, plain: bytes, final: bool) -> bytes:
    nonce = secrets.token_bytes(_NONCE_SIZE)
    return nonce + aead.encrypt(nonce, plain, _aad(header, index, final))


def _unseal(aead: AESGCM, header: bytes, index: int, box: bytes, final: bool) -> bytes | None:
    try:
        return aead.decrypt(box[:_NONCE_SIZE], box[_NONCE_SIZE:], _aad(header, index, final))
    except InvalidTag:
        return None


class _PlainView(io.RawIOBase):
    """Seeking over a file's plaintext, whose length is :attr:`size`."""

    _position = 0

    @property
    def size(self) -> int:
        raise NotImplementedError

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position


class EncryptingWriter(_PlainView):
    """A write-only, seekable file whose contents reach the disk only encrypted."""

    def __init__(self, path: Path, keyring: Keyring, chunk_size: int = CHUNK_SIZE) -> None:
        self.key_id = keyring.current_id
        self._aead = AESGCM(keyring.current_key)
        self._header = _HEADER.pack(
            MAGIC, secrets.token_bytes(16), chunk_size, self.key_id.encode()
        )
        self._chunk_size = chunk_size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.fchmod(self._fd, 0o600)
        os.pwrite(self._fd, self._header, 0)
        self._tail_index = 0
        self._tail = bytearray()
        self._position = 0

    @property
    def size(self) -> int:
        """Plaintext bytes written so far."""
        return self._tail_index * self._chunk_size + len(self._tail)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self._position > self.size:  # a seek past the end leaves a gap of zeros
            gap = self._position - self.size
            self._position = self.size
            self._write(bytes(gap))
        self._write(bytes(data))
        self._store_tail(final=False)
        return len(data)

    def _write(self, data: bytes) -> None:
        written = 0
        while written < len(data):
            index, offset = divmod(self._position, self._chunk_size)
            if index > self._tail_index:  # the tail is full: it is never touched again here
                self._store_tail(final=False)
                self._tail_index += 1
                self._tail = bytearray()
                continue
            piece = data[written : written + self._chunk_size - offset]
            if index == self._tail_index:
                self._tail[offset : offset + len(piece)] = piece
            else:
                self._patch(index, offset, piece)
            written += len(piece)
            self._position += len(piece)

    def _slot(self, index: int) -> int:
        return _HEADER.size + index * (self._chunk_size + _OVERHEAD)

    def _patch(self, index: int, offset: int, piece: bytes) -> None:
        """Change bytes of a chunk already on disk: decrypt, patch, seal with a fresh nonce."""
        box = os.pread(self._fd, self._chunk_size + _OVERHEAD, self._slot(index))
        plain = _unseal(self._aead, self._header, index, box, final=False)
        if plain is None:
            raise RecordingFileError(f"chunk {index} changed on disk while being written")
        patched = bytearray(plain)
        patched[offset : offset + len(piece)] = piece
        os.pwrite(
            self._fd,
            _seal(self._aead, self._header, index, bytes(patched), False),
            self._slot(index),
        )

    def _store_tail(self, final: bool) -> None:
        box = _seal(self._aead, self._header, self._tail_index, bytes(self._tail), final)
        os.pwrite(self._fd, box, self._slot(self._tail_index))

    def close(self) -> None:
        """Mark the last box final (idempotent). :func:`describe_stored` makes it durable, off
        the path that stops a recording."""
        if not self.closed:
            try:
                self._store_tail(final=True)
            finally:
                os.close(self._fd)
        super().close()


class DecryptingReader(_PlainView):
    """A seekable, read-only view of a recording's plaintext (PyAV can open it).

    By default the file must be complete (its last box marked final). ``allow_unfinished``
    reads what a killed writer left: the unmarked tail, minus a last box torn mid-write.
    """

    _size = 0

    def __init__(self, path: Path, keyring: Keyring, allow_unfinished: bool = False) -> None:
        self._file = path.open("rb")
        try:
            self._read_header(path, keyring)
            self._find_end(path, allow_unfinished)
        except BaseException:
            self._file.close()
            raise

    def _read_header(self, path: Path, keyring: Keyring) -> None:
        header = self._file.read(_HEADER.size)
        try:
            magic, _, chunk_size, key_id = _HEADER.unpack(header)
        except struct.error as exc:
            raise RecordingFileError(f"{path.name}: no recording header") from exc
        if magic != MAGIC or chunk_size <= 0:
            raise RecordingFileError(f"{path.name}: not an encrypted recording")
        self.key_id = key_id.decode(errors="replace")
        key = keyring.key(self.key_id)
        if key is None:
            raise RecordingFileError(
                f"{path.name} was sealed with key {self.key_id}, which is not in the keyring"
            )
        self._header = header
        self._aead = AESGCM(key)
        self.chunk_size = chunk_size

    def _find_end(self, path: Path, allow_unfinished: bool) -> None:
        slot = self.chunk_size + _OVERHEAD
        body = os.fstat(self._file.fileno()).st_size - _HEADER.size
        full, rest = divmod(body, slot)
        self.boxes = full + (1 if rest else 0)
        self.complete = False
        self._cached: tuple[int, bytes] | None = None
        torn = False
        while self.boxes > 0:
            index = self.boxes - 1
            box = self._box(index)
            plain = _unseal(self._aead, self._header, index, box, final=True)
            self.complete = plain is not None
            if plain is None and allow_unfinished:
                plain = _unseal(self._aead, self._header, index, box, final=False)
            if plain is not None:
                self._cached = (index, plain)
                self._size = index * self.chunk_size + len(plain)
                return
            if not allow_unfinished or torn:
                raise RecordingFileError(f"{path.name}: the end of the file does not authenticate")
            torn = True  # a box torn by a crash mid-write: what precedes it still counts
            self.boxes -= 1
        if not allow_unfinished:
            raise RecordingFileError(f"{path.name}: no data")

    def _box(self, index: int) -> bytes:
        self._file.seek(_HEADER.size + index * (self.chunk_size + _OVERHEAD))
        return self._file.read(self.chunk_size + _OVERHEAD)

    @property
    def size(self) -> int:
        """Plaintext bytes in the file."""
        return self._size

    def readable(self) -> bool:
        return True

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
            piece = self.chunk(index)[start : start + end - offset]
            parts.append(piece)
            offset += len(piece)
        return b"".join(parts)

    def chunk(self, index: int) -> bytes:
        """The plaintext of box ``index`` (authenticated)."""
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        final = self.complete and index == self.boxes - 1
        plain = _unseal(self._aead, self._header, index, self._box(index), final)
        if plain is None:
            raise RecordingFileError(f"chunk {index} does not authenticate")
        self._cached = (index, plain)
        return plain

    def close(self) -> None:
        self._file.close()
        super().close()


def seal_unfinished(path: Path, keyring: Keyring) -> bool:
    """Mark the end of a file a killed writer left (drops a torn last box); ``True`` if changed."""
    with DecryptingReader(path, keyring, allow_unfinished=True) as reader:
        if reader.complete:
            return False
        last = max(0, reader.boxes - 1)
        plain = reader.chunk(last) if reader.boxes else b""
        box = _seal(reader._aead, reader._header, last, plain, final=True)
        offset = _HEADER.size + last * (reader.chunk_size + _OVERHEAD)
    with path.open("r+b") as handle:
        handle.truncate(offset)
        handle.seek(offset)
        handle.write(box)
        handle.flush()
        os.fsync(handle.fileno())
    return True


@dataclass(frozen=True)
class StoredFile:
    """A finished file as recorded in the index: name relative to the recordings folder."""

    name: str
    size: int
    sha256: str
    key_id: str

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "encrypted": True,
            "key_id": self.key_id,
        }


def describe_stored(path: Path, keyring: Keyring, root: Path) -> StoredFile:
    """Flush a finished file to disk, then its plaintext size and checksum, authenticating every
    box (blocking: use a thread)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
    with DecryptingReader(path, keyring) as reader:
        for offset in range(0, reader.size, _READ_BLOCK):
            digest.update(reader.read_at(offset, _READ_BLOCK))
        return StoredFile(
            str(path.relative_to(root)), reader.size, digest.hexdigest(), reader.key_id
        )
