"""Photos in SQL: uploads under way (their chunks sealed as they arrive) and the photos they
became (the cleaned image sealed, bound to the photo's id).

Why in the database rather than files beside the recordings: a photo is small (a few MiB at
most), it is written once with its index row in one transaction (no orphan file, no row
without its file), and every node of a cluster reads it from the one database without a
shared folder; backups of the records carry the photos with them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from records.database import RecordsDatabase
from records.errors import TooManyPhotos, TooManyUploads, UploadOffset
from records.models import Photo, Upload
from records.sealing import Sealer, open_bytes, seal_bytes
from records.tables import PhotoChunkRow, PhotoRow, PhotoUploadRow


@dataclass(frozen=True)
class PhotoLimits:
    """How many photos one consultation keeps, and uploads it may have under way (each
    expiring after ``upload_ttl``)."""

    per_consultation: int
    pending_uploads: int
    upload_ttl: timedelta


def _photo_context(photo_id: str) -> bytes:
    return f"teleconsult:photos:{photo_id}:image".encode()


def _chunk_context(upload_id: str, offset: int) -> bytes:
    return f"teleconsult:photo_upload_chunks:{upload_id}:{offset}".encode()


class PhotoRecords:
    """The ``photos``, ``photo_uploads`` and ``photo_upload_chunks`` tables."""

    def __init__(self, database: RecordsDatabase, sealer: Sealer) -> None:
        self._db = database
        self._sealer = sealer

    async def start_upload(
        self,
        consultation_id: str,
        by: str,
        by_role: str,
        total_bytes: int,
        at: datetime,
        limits: PhotoLimits,
    ) -> Upload:
        """A new upload, unless the consultation has its most photos or uploads under way
        (expired uploads are dropped first)."""
        async with self._db.transaction() as session:
            await self._db.serialise(session, "photos:" + consultation_id)
            await self._drop_expired(session, at)
            photos = await session.scalar(
                select(func.count())
                .select_from(PhotoRow)
                .where(PhotoRow.consultation_id == consultation_id)
            )
            if (photos or 0) >= limits.per_consultation:
                raise TooManyPhotos()
            pending = await session.scalar(
                select(func.count())
                .select_from(PhotoUploadRow)
                .where(
                    PhotoUploadRow.consultation_id == consultation_id,
                    PhotoUploadRow.photo_id.is_(None),
                )
            )
            if (pending or 0) >= limits.pending_uploads:
                raise TooManyUploads()
            row = PhotoUploadRow(
                upload_id="up-" + secrets.token_urlsafe(18),
                consultation_id=consultation_id,
                by_subject=by,
                by_role=by_role,
                total_bytes=total_bytes,
                received=0,
                created_at=at,
                expires_at=at + limits.upload_ttl,
            )
            session.add(row)
            return _upload_of(row)

    async def upload(self, upload_id: str, at: datetime) -> Upload | None:
        """The upload, unless unknown or expired (a finished one lives until it expires)."""

        async def query(session: AsyncSession) -> Upload | None:
            row = await session.get(PhotoUploadRow, upload_id)
            return None if row is None or row.expires_at <= at else _upload_of(row)

        return await self._db.read(query)

    async def add_chunk(self, upload_id: str, offset: int, data: bytes) -> int:
        """Keep the bytes of a chunk starting at ``offset``; returns the bytes now held.

        A chunk resent (all of it already held) changes nothing; one overlapping what is held
        adds only its new tail; one starting past what is held is :class:`UploadOffset`."""
        async with self._db.transaction() as session:
            row = await session.get(PhotoUploadRow, upload_id, with_for_update=True)
            if row is None:
                raise UploadOffset(0)
            if offset > row.received:
                raise UploadOffset(row.received)
            fresh = data[row.received - offset :]
            if not fresh or row.photo_id is not None:
                return row.received
            session.add(
                PhotoChunkRow(
                    upload_id=upload_id,
                    offset=row.received,
                    data_sealed=seal_bytes(
                        self._sealer.keyring, fresh, _chunk_context(upload_id, row.received)
                    ),
                )
            )
            row.received += len(fresh)
            return row.received

    async def received_bytes(self, upload_id: str) -> bytes:
        """Every byte of the upload, in order."""

        async def query(session: AsyncSession) -> bytes:
            rows = await session.scalars(
                select(PhotoChunkRow)
                .where(PhotoChunkRow.upload_id == upload_id)
                .order_by(PhotoChunkRow.offset)
            )
            keyring = self._sealer.keyring
            return b"".join(
                open_bytes(keyring, r.data_sealed, _chunk_context(upload_id, r.offset))
                for r in rows
            )

        return await self._db.read(query)

    async def complete(self, upload_id: str, photo: Photo, image: bytes) -> Photo:
        """Keep the photo and mark the upload done (its chunks are dropped); if another request
        finished it first, that photo is the answer."""
        async with self._db.transaction() as session:
            upload = await session.get(PhotoUploadRow, upload_id, with_for_update=True)
            if upload is not None and upload.photo_id is not None:
                earlier = await session.get(PhotoRow, upload.photo_id)
                if earlier is not None:
                    return _photo_of(earlier)
            session.add(
                PhotoRow(
                    photo_id=photo.photo_id,
                    consultation_id=photo.consultation_id,
                    patient_id=photo.patient_id,
                    taken_at=photo.taken_at,
                    by_subject=photo.by,
                    by_role=photo.by_role,
                    media_type=photo.media_type,
                    width=photo.width,
                    height=photo.height,
                    size_bytes=photo.size_bytes,
                    image_sealed=seal_bytes(
                        self._sealer.keyring, image, _photo_context(photo.photo_id)
                    ),
                )
            )
            if upload is not None:
                upload.photo_id = photo.photo_id
            await session.execute(delete(PhotoChunkRow).where(PhotoChunkRow.upload_id == upload_id))
            return photo

    async def discard_upload(self, upload_id: str) -> None:
        """Drop an upload whose bytes were refused (not an image, too many pixels)."""
        async with self._db.transaction() as session:
            await session.execute(delete(PhotoChunkRow).where(PhotoChunkRow.upload_id == upload_id))
            await session.execute(
                delete(PhotoUploadRow).where(PhotoUploadRow.upload_id == upload_id)
            )

    async def get(self, photo_id: str) -> Photo | None:
        async def query(session: AsyncSession) -> Photo | None:
            row = await session.get(PhotoRow, photo_id)
            return None if row is None else _photo_of(row)

        return await self._db.read(query)

    async def image(self, photo_id: str) -> bytes | None:
        async def query(session: AsyncSession) -> bytes | None:
            sealed = await session.scalar(
                select(PhotoRow.image_sealed).where(PhotoRow.photo_id == photo_id)
            )
            if sealed is None:
                return None
            return open_bytes(self._sealer.keyring, sealed, _photo_context(photo_id))

        return await self._db.read(query)

    async def of_consultations(self, consultation_ids: list[str]) -> dict[str, list[Photo]]:
        """The photos of each consultation, oldest first (the images are not read)."""

        async def query(session: AsyncSession) -> dict[str, list[Photo]]:
            found: dict[str, list[Photo]] = {cid: [] for cid in consultation_ids}
            if not consultation_ids:
                return found
            rows = await session.scalars(
                select(PhotoRow)
                .options(defer(PhotoRow.image_sealed))
                .where(PhotoRow.consultation_id.in_(consultation_ids))
                .order_by(PhotoRow.taken_at, PhotoRow.photo_id)
            )
            for row in rows:
                found[row.consultation_id].append(_photo_of(row))
            return found

        return await self._db.read(query)

    async def _drop_expired(self, session: AsyncSession, at: datetime) -> None:
        expired = select(PhotoUploadRow.upload_id).where(PhotoUploadRow.expires_at <= at)
        await session.execute(delete(PhotoChunkRow).where(PhotoChunkRow.upload_id.in_(expired)))
        await session.execute(delete(PhotoUploadRow).where(PhotoUploadRow.expires_at <= at))


def _upload_of(row: PhotoUploadRow) -> Upload:
    return Upload(
        row.upload_id,
        row.consultation_id,
        row.by_subject,
        row.by_role,
        row.total_bytes,
        row.received,
        row.created_at,
        row.expires_at,
        row.photo_id,
    )


def _photo_of(row: PhotoRow) -> Photo:
    return Photo(
        row.photo_id,
        row.consultation_id,
        row.patient_id,
        row.taken_at,
        row.by_subject,
        row.by_role,
        row.media_type,
        row.width,
        row.height,
        row.size_bytes,
    )
