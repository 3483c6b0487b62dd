"""The photo and chat tables on both engines (SQLite and PostgreSQL): chunks kept in order and
idempotently, the limits, sealed values bound to their rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from records.errors import SealError, TooManyMessages, TooManyPhotos, TooManyUploads, UploadOffset
from records.facade import Records
from records.models import Photo
from records.photos import PhotoLimits
from records.tables import ChatRow

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
LIMITS = PhotoLimits(per_consultation=1, pending_uploads=1, upload_ttl=timedelta(minutes=15))


def photo(photo_id: str, consultation_id: str = "c-1") -> Photo:
    return Photo(photo_id, consultation_id, None, NOW, "outlet-1", "outlet", "image/png", 4, 3, 9)


async def test_an_upload_gathers_its_chunks_once_each_and_becomes_one_photo(
    records: Records,
) -> None:
    photos = records.photos
    upload = await photos.start_upload("c-1", "outlet-1", "outlet", 10, NOW, LIMITS)
    with pytest.raises(TooManyUploads):
        await photos.start_upload("c-1", "outlet-1", "outlet", 10, NOW, LIMITS)
    assert await photos.add_chunk(upload.upload_id, 0, b"01234") == 5
    assert await photos.add_chunk(upload.upload_id, 0, b"01234") == 5, "resent: no change"
    assert await photos.add_chunk(upload.upload_id, 3, b"34567") == 8, "overlap: the tail"
    with pytest.raises(UploadOffset) as gap:
        await photos.add_chunk(upload.upload_id, 9, b"9")
    assert gap.value.received == 8
    assert await photos.add_chunk(upload.upload_id, 8, b"89") == 10
    assert await photos.received_bytes(upload.upload_id) == b"0123456789"
    kept = await photos.complete(upload.upload_id, photo("ph-1"), b"IMAGE")
    again = await photos.complete(upload.upload_id, photo("ph-2"), b"OTHER")
    assert again.photo_id == kept.photo_id == "ph-1", "a second completion gets the first photo"
    assert await photos.image("ph-1") == b"IMAGE"
    assert [p.photo_id for p in (await photos.of_consultations(["c-1", "c-2"]))["c-1"]] == ["ph-1"]
    with pytest.raises(TooManyPhotos):
        await photos.start_upload("c-1", "outlet-1", "outlet", 10, NOW, LIMITS)
    # Expired uploads give their place back.
    await photos.start_upload("c-2", "outlet-1", "outlet", 10, NOW, LIMITS)
    later = NOW + LIMITS.upload_ttl + timedelta(seconds=1)
    assert await photos.start_upload("c-2", "outlet-1", "outlet", 10, later, LIMITS)


async def test_chat_pages_and_its_sealed_text_is_bound_to_its_row(records: Records) -> None:
    for i in range(5):
        await records.chat.add("c-1", "dr-a", "Dr A", "specialist", f"m{i}", NOW, 6)
    await records.chat.add("c-1", "dr-a", "Dr A", "specialist", "m5", NOW, 6)
    with pytest.raises(TooManyMessages):
        await records.chat.add("c-1", "dr-a", "Dr A", "specialist", "m6", NOW, 6)
    first = await records.chat.page("c-1", 0, 4)
    rest = await records.chat.page("c-1", first[-1].seq, 4)
    assert [m.text for m in first + rest] == [f"m{i}" for i in range(6)]
    assert first[0].name == "Dr A" and first[0].to is None
    # A sealed text copied onto another message does not open.
    async with records.database.transaction() as session:
        moved = await session.scalar(select(ChatRow.text_sealed).where(ChatRow.id == first[0].seq))
        await session.execute(
            update(ChatRow).where(ChatRow.id == rest[-1].seq).values(text_sealed=moved)
        )
    with pytest.raises(SealError):
        await records.chat.page("c-1", rest[0].seq, 4)
