"""Recording HTTP API: list, download with Range (playback in the browser), legal hold.

Who gets in is the access policy (:mod:`rooms.access`); every access is audited.
Files are stored encrypted and decrypted on the fly, chunk by chunk, for exactly the range asked
for.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import hdrs, web

from recording.files import DecryptingReader, RecordingFileError
from recording.index import RecordingCatalog
from recording.model import CompositeFile, RecordingMeta, RecordingStatus, TrackFile
from recording.service import RecordingConfig
from rooms import access
from rooms.access import Access
from rooms.audit import AuditAction
from rooms.errors import DomainError, InvalidState, NotFound
from rooms.models import Consultation, iso
from rooms.service import ConsultationService
from rooms.store import Store
from signaling.auth import AuthError, Identity, TokenAuthority
from signaling.errors import error_payload
from web.http_errors import http_status
from web.http_range import ByteRange, RangeNotSatisfiable, resolve_range
from web.keys import authority_key, consultations_key, records_key, store_key

logger = logging.getLogger(__name__)

_BLOCK = 64 * 1024


class RecordingRoutes:
    """Handlers of ``/api/recordings``; dependencies come from the composition root."""

    def __init__(self, config: RecordingConfig) -> None:
        self._config = config

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/recordings", self.list_recordings)
        router.add_get("/api/recordings/{recording_id}/tracks/{track_name}", self.download)
        router.add_post("/api/recordings/{recording_id}/legal_hold", self.legal_hold)

    async def list_recordings(self, request: web.Request) -> web.StreamResponse:
        deps = _Deps(request.app)
        try:
            identity = deps.identity(request)
            consultation_id = request.query.get("consultation_id", "")
            if not consultation_id:
                raise _BadRequest("consultation_id is required")
            await deps.authorize(identity, Access.RECORDING_LIST, consultation_id)
            recordings = await deps.catalog.for_consultation(consultation_id)
            await deps.service.audit(
                consultation_id, identity, AuditAction.RECORDINGS_LISTED, {"count": len(recordings)}
            )
        except _Refusal as refusal:
            return refusal.response()
        return web.json_response(
            {
                "consultation_id": consultation_id,
                "recordings": [_public(meta) for meta in recordings],
            }
        )

    async def download(self, request: web.Request) -> web.StreamResponse:
        deps = _Deps(request.app)
        track_name = request.match_info["track_name"]
        try:
            identity = deps.identity(request)
            meta = await deps.recording(request.match_info["recording_id"])
            await deps.authorize(identity, Access.RECORDING_DOWNLOAD, meta.consultation_id)
            stored = _find_file(meta, track_name)
            path = self._config.root / stored.file
            reader = await asyncio.to_thread(DecryptingReader, path, self._config.keyring)
        except _Refusal as refusal:
            return refusal.response()
        except FileNotFoundError:
            return _Refusal(404, "not_found", "the recording file is gone").response()
        except RecordingFileError as exc:
            logger.error("recording unreadable recording=%s error=%s", meta.recording_id, exc)
            return _Refusal(
                500, "recording_unreadable", "the recording cannot be decrypted"
            ).response()
        try:
            return await self._send(request, deps, identity, meta, track_name, stored, reader)
        finally:
            reader.close()

    async def _send(
        self,
        request: web.Request,
        deps: _Deps,
        identity: Identity,
        meta: RecordingMeta,
        track_name: str,
        stored: TrackFile | CompositeFile,
        reader: DecryptingReader,
    ) -> web.StreamResponse:
        size = reader.size
        try:
            wanted = _byte_range(request, size)
            start, end = (wanted.start, wanted.end) if wanted else (0, size)
            await deps.service.audit(
                meta.consultation_id,
                identity,
                AuditAction.RECORDING_ACCESSED,
                {"recording_id": meta.recording_id, "track": track_name, "range": [start, end]},
            )
        except _Refusal as refusal:
            return refusal.response()
        logger.info(
            "recording download recording=%s track=%s by=%s bytes=%d-%d",
            meta.recording_id,
            track_name,
            identity.subject,
            start,
            end,
        )
        partial = wanted is not None
        response = web.StreamResponse(
            status=206 if partial else 200,
            headers={
                "Content-Type": "video/webm" if ".webm" in stored.file else "video/x-matroska",
                "Accept-Ranges": "bytes",
                "Content-Length": str(end - start),
                "Cache-Control": "no-store",
            },
        )
        if partial:
            response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        await response.prepare(request)
        remaining, offset = end - start, start
        while remaining > 0:
            data = await asyncio.to_thread(reader.read_at, offset, min(_BLOCK, remaining))
            if not data:
                break
            remaining -= len(data)
            offset += len(data)
            await response.write(data)
        await response.write_eof()
        return response

    async def legal_hold(self, request: web.Request) -> web.StreamResponse:
        deps = _Deps(request.app)
        try:
            identity = deps.identity(request)
            deps.allow(identity, Access.RECORDING_LEGAL_HOLD, None)
            found = await deps.recording(request.match_info["recording_id"])
            try:
                body = await request.json()
            except ValueError as exc:
                raise _BadRequest('send JSON {"hold": true|false}') from exc
            hold = body.get("hold") if isinstance(body, dict) else None
            if not isinstance(hold, bool):
                raise _BadRequest('send JSON {"hold": true|false}')
            meta = await deps.catalog.set_legal_hold(found.recording_id, hold)
            if meta is None:  # deleted meanwhile
                raise _Refusal.of(NotFound("no such recording"))
            await deps.service.audit(
                meta.consultation_id,
                identity,
                AuditAction.RECORDING_LEGAL_HOLD,
                {"recording_id": meta.recording_id, "hold": hold},
            )
        except _Refusal as refusal:
            return refusal.response()
        return web.json_response(_public(meta))


class _Deps:
    """What a request needs from the app (created by the rooms context at startup)."""

    def __init__(self, app: web.Application) -> None:
        self.authority: TokenAuthority = app[authority_key]
        self.store: Store = app[store_key]
        self.catalog = RecordingCatalog(app[records_key].recordings)
        self.service: ConsultationService = app[consultations_key]

    def identity(self, request: web.Request) -> Identity:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Refusal(401, "token_missing", "send Authorization: Bearer <token>")
        try:
            return self.authority.verify(token.strip())
        except AuthError as exc:
            raise _Refusal(401, exc.code, exc.message) from exc

    async def authorize(self, identity: Identity, action: Access, consultation_id: str) -> None:
        """Refused unless the access policy allows ``action`` on this consultation."""
        consultation = await self.store.get_consultation(consultation_id)
        if consultation is None:
            raise _Refusal.of(NotFound("no such consultation"))
        self.allow(identity, action, consultation)

    def allow(self, identity: Identity, action: Access, consultation: Consultation | None) -> None:
        """Refused (logged) unless the access policy allows ``action``."""
        try:
            access.require(identity, action, consultation)
        except DomainError as refused:
            logger.info(
                "recording access refused action=%s consultation=%s subject=%s role=%s",
                action.value,
                consultation.id if consultation else None,
                identity.subject,
                identity.role.value,
            )
            raise _Refusal.of(refused) from None

    async def recording(self, recording_id: str) -> RecordingMeta:
        meta = await self.catalog.get(recording_id)
        if meta is None:
            raise _Refusal.of(NotFound("no such recording"))
        return meta


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    @classmethod
    def of(cls, error: DomainError) -> _Refusal:
        return cls(http_status(error), error.code, error.message)

    def response(self) -> web.Response:
        return web.json_response(error_payload(self.code, self.message), status=self.status)


class _BadRequest(_Refusal):
    def __init__(self, message: str) -> None:
        super().__init__(400, "bad_request", message)


def _find_file(meta: RecordingMeta, track_name: str) -> TrackFile | CompositeFile:
    if meta.status is RecordingStatus.RECORDING:
        raise _Refusal.of(InvalidState("this recording is still running"))
    stored = meta.file_named(track_name)
    if stored is None:
        raise _Refusal.of(NotFound("no such track in this recording"))
    return stored


class _Unsatisfiable(_Refusal):
    """``416`` with ``Content-Range: bytes */size`` (RFC 9110 §15.5.17)."""

    def __init__(self, error: RangeNotSatisfiable) -> None:
        super().__init__(416, "bad_range", str(error))
        self.content_range = error.content_range

    def response(self) -> web.Response:
        response = super().response()
        response.headers["Content-Range"] = self.content_range
        return response


def _byte_range(request: web.Request, size: int) -> ByteRange | None:
    """The range asked for (``None``: the whole file); see :mod:`web.http_range`."""
    try:
        return resolve_range(request.headers.get(hdrs.RANGE), size)
    except RangeNotSatisfiable as error:
        raise _Unsatisfiable(error) from None


def _public(meta: RecordingMeta) -> dict[str, Any]:
    """Index entry as shown to clients: times as ISO strings, no server paths."""
    shown = meta.to_document()
    del shown["folder"]
    shown["started_at"] = iso(meta.started_at)
    shown["stopped_at"] = iso(meta.stopped_at)
    if meta.consent is not None:
        shown["consent"] = meta.consent.to_wire()
    return shown
