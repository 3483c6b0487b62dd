"""Encryption at rest: round trip, ranges that decrypt only what they touch, tampering refused."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import av
import pytest

from media.recording_files import (
    DecryptingReader,
    RecordingFileError,
    open_plain,
    parse_key,
    plain_size,
    read_range,
    seal_file,
)


@pytest.fixture
def plain(tmp_path: Path) -> tuple[Path, bytes]:
    data = secrets.token_bytes(3 * 65536 + 1234)
    path = tmp_path / "track.webm"
    path.write_bytes(data)
    return path, data


def test_sealing_encrypts_and_reading_round_trips(
    tmp_path: Path, plain: tuple[Path, bytes]
) -> None:
    path, data = plain
    key = secrets.token_bytes(32)
    stored = seal_file(path, key, tmp_path)
    sealed = tmp_path / stored.name
    assert stored.encrypted and not path.exists() and sealed.name == "track.webm.enc"
    assert stored.size == len(data) == plain_size(sealed)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert data[:4096] not in sealed.read_bytes()
    assert b"".join(read_range(sealed, key, 0, len(data))) == data
    for start, end in [
        (0, 1),
        (65530, 65546),
        (131072, 131073),
        (len(data) - 10, len(data)),
        (5, 200_000),
    ]:
        assert b"".join(read_range(sealed, key, start, end)) == data[start:end]


def test_without_a_key_files_stay_plain_with_a_checksum(
    tmp_path: Path, plain: tuple[Path, bytes]
) -> None:
    path, data = plain
    stored = seal_file(path, None, tmp_path)
    assert not stored.encrypted and stored.name == "track.webm"
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert b"".join(read_range(path, None, 10, 20)) == data[10:20]


def test_a_range_decrypts_only_the_chunks_it_touches(
    tmp_path: Path, plain: tuple[Path, bytes]
) -> None:
    path, data = plain
    key = secrets.token_bytes(32)
    sealed = tmp_path / seal_file(path, key, tmp_path).name
    raw = bytearray(sealed.read_bytes())
    raw[28 + 10] ^= 0xFF  # damage chunk 0
    sealed.write_bytes(bytes(raw))
    assert b"".join(read_range(sealed, key, 70000, 70100)) == data[70000:70100]
    with pytest.raises(RecordingFileError):
        b"".join(read_range(sealed, key, 0, 10))


def test_wrong_key_truncation_and_swapped_chunks_are_refused(
    tmp_path: Path, plain: tuple[Path, bytes]
) -> None:
    path, _ = plain
    key = secrets.token_bytes(32)
    sealed = tmp_path / seal_file(path, key, tmp_path).name
    with (
        pytest.raises(RecordingFileError),
        DecryptingReader(sealed, secrets.token_bytes(32)) as reader,
    ):
        reader.read_at(0, 10)
    box = 65536 + 16
    raw = sealed.read_bytes()
    header, body = raw[:28], raw[28:]
    truncated = tmp_path / "truncated.enc"
    truncated.write_bytes(header + body[: 3 * box])  # the final (short) chunk is gone
    with pytest.raises(RecordingFileError), DecryptingReader(truncated, key) as reader:
        reader.read_at(3 * 65536, 10)  # the header's size says there is more: refused, not short
    swapped = tmp_path / "swapped.enc"
    swapped.write_bytes(header + body[box : 2 * box] + body[:box] + body[2 * box :])
    with pytest.raises(RecordingFileError), DecryptingReader(swapped, key) as reader:
        reader.read_at(0, 10)
    with pytest.raises(RecordingFileError):
        open_plain(sealed, None)


def test_pyav_plays_an_encrypted_recording_through_the_reader(tmp_path: Path) -> None:
    from tests.recording.synthetic import colour_frames

    source = tmp_path / "clip.webm"
    with av.open(str(source), "w", format="webm") as container:
        stream = container.add_stream("vp8", rate=30)
        stream.width, stream.height = 320, 240
        for index, data in enumerate(colour_frames((10, 200, 10), 20)):
            packet = av.Packet(data)
            packet.stream, packet.pts, packet.dts = stream, index * 33, index * 33
            packet.time_base = stream.time_base = __import__("fractions").Fraction(1, 1000)
            container.mux(packet)
    key = secrets.token_bytes(32)
    sealed = tmp_path / seal_file(source, key, tmp_path).name
    with DecryptingReader(sealed, key) as reader, av.open(reader) as container:
        assert len(list(container.decode(video=0))) == 20


def test_key_parsing() -> None:
    import base64

    key = secrets.token_bytes(32)
    assert parse_key(base64.b64encode(key).decode()) == key
    assert parse_key(None) is None and parse_key("") is None
    with pytest.raises(ValueError):
        parse_key(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError):
        parse_key("not base64 !!")
