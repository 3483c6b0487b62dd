"""Encryption as files are written: round trips with seeks, ranges, tampering, crashes, modes."""

from __future__ import annotations

import os
import secrets
import stat
from fractions import Fraction
from pathlib import Path

import av
import pytest

from recording.files import (
    DecryptingReader,
    EncryptingWriter,
    RecordingFileError,
    describe_stored,
    make_private_dir,
    restrict_tree,
    seal_unfinished,
)
from recording.keys import Keyring
from tests.recording.synthetic import colour_frames

CHUNK = 4096
BOX = CHUNK + 28
HEADER = 44


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.of([], secrets.token_bytes(32))


def write_with_seeks(path: Path, keyring: Keyring) -> bytes:
    """Write as a muxer does (append, seek back to patch the start, seek to the end)."""
    data = bytearray(secrets.token_bytes(3 * CHUNK + 1234))
    writer = EncryptingWriter(path, keyring, chunk_size=CHUNK)
    for at in range(0, len(data), 1000):
        writer.write(data[at : at + 1000])
    patch = secrets.token_bytes(300)
    writer.seek(CHUNK - 100)  # across the boundary of two chunks already on disk
    writer.write(patch)
    data[CHUNK - 100 : CHUNK + 200] = patch
    writer.seek(0, os.SEEK_END)
    writer.write(b"tail")
    data += b"tail"
    writer.close()
    return bytes(data)


def test_round_trip_with_seeks_and_no_plaintext_on_disk(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "track.webm.enc"
    data = write_with_seeks(path, keyring)
    raw = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all(data[at : at + 16] not in raw for at in range(0, len(data) - 16, 512))
    with DecryptingReader(path, keyring) as reader:
        assert reader.complete and reader.size == len(data) and reader.read() == data
        for start, end in [(0, 1), (CHUNK - 5, CHUNK + 5), (2 * CHUNK, 3 * CHUNK), (5, 9000)]:
            assert reader.read_at(start, end - start) == data[start:end]
    stored = describe_stored(path, keyring, tmp_path)
    assert stored.size == len(data) and stored.key_id == keyring.current_id
    assert stored.to_dict()["file"] == "track.webm.enc"


def test_a_seek_past_the_end_leaves_zeros(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "gap.enc"
    writer = EncryptingWriter(path, keyring, chunk_size=CHUNK)
    writer.write(b"ab")
    writer.seek(CHUNK + 3)
    writer.write(b"cd")
    writer.close()
    with DecryptingReader(path, keyring) as reader:
        assert reader.read() == b"ab" + bytes(CHUNK + 1) + b"cd"


def test_a_range_decrypts_only_the_chunks_it_touches(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "track.enc"
    data = write_with_seeks(path, keyring)
    raw = bytearray(path.read_bytes())
    raw[HEADER + 40] ^= 0xFF  # damage chunk 0
    path.write_bytes(bytes(raw))
    with DecryptingReader(path, keyring) as reader:
        assert reader.read_at(CHUNK + 10, 100) == data[CHUNK + 10 : CHUNK + 110]
        with pytest.raises(RecordingFileError):
            reader.read_at(0, 10)


def test_wrong_key_truncation_and_swapped_chunks_are_refused(
    tmp_path: Path, keyring: Keyring
) -> None:
    path = tmp_path / "track.enc"
    write_with_seeks(path, keyring)
    other = Keyring.of([], secrets.token_bytes(32))
    with pytest.raises(RecordingFileError, match=keyring.current_id):
        DecryptingReader(path, other)
    raw = path.read_bytes()
    header, body = raw[:HEADER], raw[HEADER:]
    truncated = tmp_path / "truncated.enc"
    truncated.write_bytes(header + body[: 3 * BOX])  # whole boxes cut off the end
    with pytest.raises(RecordingFileError):
        DecryptingReader(truncated, keyring)
    swapped = tmp_path / "swapped.enc"
    swapped.write_bytes(header + body[BOX : 2 * BOX] + body[:BOX] + body[2 * BOX :])
    with pytest.raises(RecordingFileError), DecryptingReader(swapped, keyring) as reader:
        reader.read_at(0, 10)
    foreign = tmp_path / "foreign.enc"  # a box from another file with the same key
    write_with_seeks(foreign, keyring)
    spliced = tmp_path / "spliced.enc"
    spliced.write_bytes(header + foreign.read_bytes()[HEADER : HEADER + BOX] + body[BOX:])
    with pytest.raises(RecordingFileError), DecryptingReader(spliced, keyring) as reader:
        reader.read_at(0, 10)


def test_what_a_killed_writer_left_reads_back_and_is_sealed_by_recovery(
    tmp_path: Path, keyring: Keyring
) -> None:
    data = secrets.token_bytes(2 * CHUNK + 700)
    writer = EncryptingWriter(tmp_path / "written.enc", keyring, chunk_size=CHUNK)
    writer.write(data)
    path = tmp_path / "killed.enc"  # the disk as it is when the process dies before close()
    path.write_bytes((tmp_path / "written.enc").read_bytes())
    writer.close()
    with pytest.raises(RecordingFileError):
        DecryptingReader(path, keyring)  # a complete file is expected by default
    with DecryptingReader(path, keyring, allow_unfinished=True) as reader:
        assert not reader.complete and reader.read() == data
    torn = tmp_path / "torn.enc"
    torn.write_bytes(path.read_bytes()[:-300])  # the last box was cut mid-write
    with DecryptingReader(torn, keyring, allow_unfinished=True) as reader:
        assert reader.read() == data[: 2 * CHUNK]
    assert seal_unfinished(torn, keyring) and not seal_unfinished(torn, keyring)
    with DecryptingReader(torn, keyring) as reader:
        assert reader.complete and reader.read() == data[: 2 * CHUNK]


def test_pyav_muxes_into_the_writer_and_plays_through_the_reader(
    tmp_path: Path, keyring: Keyring
) -> None:
    path = tmp_path / "clip.webm.enc"
    sink = EncryptingWriter(path, keyring, chunk_size=CHUNK)  # small chunks: seeks patch boxes
    with av.open(sink, "w", format="webm") as container:
        stream = container.add_stream("vp8", rate=30)
        stream.width, stream.height = 320, 240
        stream.time_base = Fraction(1, 1000)
        for index, data in enumerate(colour_frames((10, 200, 10), 20)):
            packet = av.Packet(data)
            packet.stream, packet.pts, packet.dts = stream, index * 33, index * 33
            packet.time_base = Fraction(1, 1000)
            container.mux(packet)
    sink.close()
    assert b"\x1a\x45\xdf\xa3" not in path.read_bytes() and b"\x9d\x01\x2a" not in path.read_bytes()
    with DecryptingReader(path, keyring) as reader, av.open(reader) as container:
        assert container.duration and len(list(container.decode(video=0))) == 20


def test_a_rotated_keyring_still_reads_files_sealed_with_the_old_key(tmp_path: Path) -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    path = tmp_path / "old.enc"
    write_with_seeks(path, Keyring.of([], old))
    rotated = Keyring.of([old], new)
    assert rotated.current_id != Keyring.of([], old).current_id
    with DecryptingReader(path, rotated) as reader:
        assert reader.key_id == Keyring.of([], old).current_id and reader.size > 0
    fresh = tmp_path / "new.enc"
    EncryptingWriter(fresh, rotated).close()
    with DecryptingReader(fresh, rotated) as reader:
        assert reader.key_id == rotated.current_id


def test_private_folders_are_0700_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        folder = tmp_path / "root" / "consultation" / "recording"
        make_private_dir(folder)
        for created in (folder, folder.parent, folder.parent.parent):
            assert stat.S_IMODE(created.stat().st_mode) == 0o700
        path = folder / "f.enc"
        EncryptingWriter(path, Keyring.of([], secrets.token_bytes(32))).close()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(previous)


def test_folders_and_files_left_wider_by_earlier_versions_are_made_private(tmp_path: Path) -> None:
    old = tmp_path / "root" / "c-1" / "r-1"
    old.mkdir(parents=True, mode=0o755)
    (old / "p-camera.webm.enc").write_bytes(b"x")
    (old / "p-camera.webm.enc").chmod(0o644)
    assert restrict_tree(tmp_path / "root") == 4
    for path in (tmp_path / "root").rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600)
    assert restrict_tree(tmp_path / "root") == 0
