"""Photos taken in a consultation: asked for by its clinician, uploaded in resumable chunks by
those taking part, cleaned (:mod:`records.images`), kept sealed, shown to those the access
policy allows (and to the family, when the final report attaches them), every view audited."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from records.care import CareRecord, FamilyReader
from records.columns import utc
from records.consultation_audit import ConsultationAudit
from records.errors import ImageTooLarge, UnsupportedImage
from records.facade import Records
from records.images import clean_image
from records.known_consultations import KnownConsultations
from records.models import Photo, Upload
from records.photos import PhotoLimits
from rooms import access
from rooms.access import Access
from rooms.audit import AuditAction
from rooms.errors import Forbidden, InvalidState, NotFound
from rooms.models import ConsultationState
from rooms.notify import Actor, Notifier

logger = logging.getLogger(__name__)

# Seconds the kiosk counts down before it takes a photo the clinician asked for.
COUNTDOWN_S = 3


@dataclass(frozen=True)
class PhotoConfig:
    """The limits a photo is held to."""

    max_bytes: int
    max_pixels: int
    limits: PhotoLimits


class PhotoService:
    """``photo.*`` events and the photo HTTP routes act through this."""

    def __init__(
        self,
        records: Records,
        consultations: KnownConsultations,
        care: CareRecord,
        notifier: Notifier,
        audit: ConsultationAudit,
        config: PhotoConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records = records
        self._consultations = consultations
        self._care = care
        self._notifier = notifier
        self._audit = audit
        self._config = config
        self._clock = clock

    @property
    def max_bytes(self) -> int:
        return self._config.max_bytes

    async def request(self, actor: Actor, consultation_id: str, target: str | None) -> str:
        """The clinician asks a participant (by default the outlet) to take a photo now."""
        consultation = await self._consultations.get(consultation_id)
        access.require(actor, Access.PHOTO_REQUEST, consultation)
        if consultation.state is not ConsultationState.ACTIVE:
            raise InvalidState("a photo is asked for during the call")
        participant = target or consultation.outlet_id
        if participant == actor.subject or participant not in access.taking_part_subjects(
            consultation
        ):
            raise NotFound("no such participant in this consultation")
        await self._audit.write(
            actor, consultation, AuditAction.PHOTO_REQUESTED, {"participant_id": participant}
        )
        await self._notifier.to_subject(
            participant,
            "photo.requested",
            {
                "consultation_id": consultation.id,
                "by": actor.subject,
                "name": actor.name,
                "countdown_s": COUNTDOWN_S,
            },
        )
        return participant

    async def start_upload(self, actor: Actor, consultation_id: str, total_bytes: int) -> Upload:
        """A new upload of ``total_bytes`` by someone taking part in the open consultation."""
        consultation = await self._consultations.get(consultation_id)
        access.require(actor, Access.PHOTO_ADD, consultation)
        if total_bytes > self._config.max_bytes:
            raise ImageTooLarge(f"a photo may have at most {self._config.max_bytes} bytes")
        upload = await self._records.photos.start_upload(
            consultation.id,
            actor.subject,
            actor.role.value,
            total_bytes,
            utc(self._clock()),
            self._config.limits,
        )
        logger.info(
            "photo upload started upload=%s consultation=%s by=%s bytes=%d",
            upload.upload_id,
            consultation.id,
            actor.subject,
            total_bytes,
        )
        return upload

    async def upload(self, actor: Actor, upload_id: str) -> Upload:
        """The uploader's own upload (anyone else: not found)."""
        upload = await self._records.photos.upload(upload_id, utc(self._clock()))
        if upload is None or upload.by != actor.subject:
            raise NotFound("no such upload (or it expired: start again)")
        return upload

    async def add_chunk(
        self, actor: Actor, upload_id: str, offset: int, total: int, data: bytes
    ) -> tuple[Upload, Photo | None]:
        """Keep a chunk; once every byte is there the photo is made. A chunk resent (after a
        lost answer) is accepted again; the last one resent gets the same photo."""
        upload = await self.upload(actor, upload_id)
        if total != upload.total_bytes:
            raise InvalidState(f"this upload has {upload.total_bytes} bytes, not {total}")
        if upload.photo_id is None:
            received = await self._records.photos.add_chunk(upload_id, offset, data)
            upload = await self.upload(actor, upload_id)
            if received < upload.total_bytes:
                await self._progress(actor, upload)
                return upload, None
        if upload.photo_id is not None:
            return upload, await self._records.photos.get(upload.photo_id)
        return upload, await self._finish(actor, upload)

    async def photos(self, actor: Actor, consultation_id: str) -> list[Photo]:
        consultation = await self._consultations.get(consultation_id)
        access.require(actor, Access.PHOTO_READ, consultation)
        return (await self._records.photos.of_consultations([consultation.id]))[consultation.id]

    async def read(self, actor: Actor, photo_id: str) -> tuple[Photo, bytes]:
        """The photo for its clinician, its outlet, admins, or a clinician who may read the
        patient's history (to compare visits); audited."""
        photo = await self._records.photos.get(photo_id)
        if photo is None:
            raise NotFound("no such photo")
        consultation = await self._consultations.get(photo.consultation_id)
        if not access.may(actor, Access.PHOTO_READ, consultation):
            if photo.patient_id is None or not actor.role.is_clinician:
                access.require(actor, Access.PHOTO_READ, consultation)
            assert photo.patient_id is not None
            try:
                await self._care.require_history(actor, photo.patient_id)
            except Forbidden:
                access.require(actor, Access.PHOTO_READ, consultation)
        await self._audit.write(
            actor, consultation, AuditAction.PHOTO_VIEWED, {"photo_id": photo_id}
        )
        return photo, await self._image(photo)

    async def read_shared(self, share_code: str, pin: str, photo_id: str) -> tuple[Photo, bytes]:
        """A photo the family's copy of the report attaches, by share code and PIN (wrong PINs
        count towards the same lockout as the report's)."""
        report = await self._care.read_shared(share_code, pin)
        if photo_id not in report.attachments:
            raise NotFound("no such photo")
        photo = await self._records.photos.get(photo_id)
        if photo is None or photo.consultation_id != report.consultation_id:
            raise NotFound("no such photo")
        consultation = await self._consultations.get(photo.consultation_id)
        await self._audit.write(
            FamilyReader(share_code),
            consultation,
            AuditAction.PHOTO_SHARE_READ,
            {"photo_id": photo_id},
        )
        return photo, await self._image(photo)

    async def _finish(self, actor: Actor, upload: Upload) -> Photo:
        data = await self._records.photos.received_bytes(upload.upload_id)
        try:
            clean = await asyncio.to_thread(clean_image, data, self._config.max_pixels)
        except (UnsupportedImage, ImageTooLarge):
            await self._records.photos.discard_upload(upload.upload_id)
            raise
        consultation = await self._consultations.get(upload.consultation_id)
        photo_id = "ph-" + secrets.token_urlsafe(12)
        photo = await self._records.photos.complete(
            upload.upload_id,
            Photo(
                photo_id,
                consultation.id,
                consultation.patient_id,
                upload.created_at,
                upload.by,
                upload.by_role,
                clean.media_type,
                clean.width,
                clean.height,
                len(clean.data),
            ),
            clean.data,
        )
        if photo.photo_id != photo_id:  # a concurrent last chunk finished it first
            return photo
        await self._audit.write(
            actor, consultation, AuditAction.PHOTO_ADDED, {"photo_id": photo.photo_id}
        )
        payload = {"consultation_id": consultation.id, "photo": photo.to_wire()}
        for subject in sorted(access.taking_part_subjects(consultation) - {actor.subject}):
            await self._notifier.to_subject(subject, "photo.added", payload)
        logger.info(
            "photo added photo=%s consultation=%s by=%s", photo.photo_id, consultation.id, upload.by
        )
        return photo

    async def _progress(self, actor: Actor, upload: Upload) -> None:
        """``photo.progress`` to the others taking part, so both ends see the upload advance."""
        consultation = await self._consultations.get(upload.consultation_id)
        payload = {
            "consultation_id": consultation.id,
            "upload_id": upload.upload_id,
            "by": upload.by,
            "received": upload.received,
            "bytes": upload.total_bytes,
        }
        for subject in sorted(access.taking_part_subjects(consultation) - {actor.subject}):
            await self._notifier.to_subject(subject, "photo.progress", payload)

    async def _image(self, photo: Photo) -> bytes:
        image = await self._records.photos.image(photo.photo_id)
        if image is None:
            raise NotFound("no such photo")
        return image
