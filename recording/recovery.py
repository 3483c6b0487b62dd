"""Crash recovery of track files: seal the end a killed writer left, then describe what it holds.

A killed recorder leaves no duration in the file's header, so the last packet's time gives it;
the participant and source come from the file name (``<participant>-<source>[.<n>].<ext>.enc``).
Packets are read, never decoded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import av

from recording.files import (
    ENCRYPTED_SUFFIX,
    DecryptingReader,
    RecordingFileError,
    seal_unfinished,
)
from recording.keys import Keyring
from recording.model import RecordedTrack

logger = logging.getLogger(__name__)

COMPOSITE_FILE_NAME = "composite.webm" + ENCRYPTED_SUFFIX
_TRACK_SUFFIXES = (".webm" + ENCRYPTED_SUFFIX, ".mkv" + ENCRYPTED_SUFFIX)


def recover_folder(folder: Path, keyring: Keyring) -> list[RecordedTrack]:
    """The track files a killed recording left in ``folder``, sealed and described (blocking);
    files damaged beyond their tail or without a packet are left out."""
    found = [
        recover_track_file(path, keyring)
        for path in sorted(folder.iterdir())
        if path.name.endswith(_TRACK_SUFFIXES) and path.name != COMPOSITE_FILE_NAME
    ]
    return [track for track in found if track is not None]


def recover_track_file(path: Path, keyring: Keyring) -> RecordedTrack | None:
    """Seal the end a killed writer left and describe what it holds (blocking); ``None`` if the
    file is damaged beyond its tail or holds no packet."""
    try:
        seal_unfinished(path, keyring)
    except Exception as exc:  # the file is damaged beyond its tail: leave it out
        logger.warning("recording file unrecoverable file=%s error=%r", path.name, exc)
        return None
    return describe_track_file(path, keyring)


def describe_track_file(path: Path, keyring: Keyring) -> RecordedTrack | None:
    """Index facts of a track file found on disk after a crash (reads packets, never decodes)."""
    stem = path.name.split(".")[0]
    participant_id, _, source = stem.rpartition("-")
    try:
        with DecryptingReader(path, keyring) as reader, av.open(reader) as container:
            stream = container.streams[0]
            codec, kind = stream.codec_context.name, stream.type  # read before closing
            frames, last = _count_packets(container, stream)
    except (av.error.FFmpegError, IndexError, RecordingFileError):
        return None
    if not frames:
        return None
    plain_name = path.name.removesuffix(ENCRYPTED_SUFFIX)
    return RecordedTrack(
        track_name=plain_name[: plain_name.rindex(".")],
        participant_id=participant_id,
        kind=kind,
        source=source,
        codec=f"{kind}/{codec}",
        offset_s=0.0,
        duration_s=round(last, 3),
        frames=frames,
        path=path,
    )


def _count_packets(container: Any, stream: Any) -> tuple[int, float]:
    """Packets and the last one's time, up to where a damaged tail stops the demuxer."""
    frames, last = 0, 0.0
    try:
        for packet in container.demux(stream):
            if packet.pts is not None and packet.time_base is not None:
                frames += 1
                last = float(packet.pts * packet.time_base)
    except av.error.FFmpegError:
        pass  # the cut-off cluster of a killed recorder: everything before it counts
    return frames, last
