"""Photo HTTP routes (see docs/protocol.md, "Photos"):

- ``POST /api/consultations/{id}/photos`` ``{"bytes": N}`` starts an upload → ``201
  {"upload_id", "bytes", "chunk_max"}``;
- ``PUT /api/uploads/{upload_id}`` with ``Content-Range: bytes a-b/N`` sends a chunk → ``308``
  with ``Range: bytes=0-k`` while bytes are missing, ``201`` with the photo once complete;
  a chunk resent is accepted again (the same answer), one past the held bytes is ``416``;
- ``HEAD /api/uploads/{upload_id}``: how many bytes the server holds (``Upload-Offset``);
- ``GET /api/photos/{photo_id}``: the image, for those the access policy allows, audited;
- ``POST /api/reports/{share_code}/photos/{photo_id}`` ``{"pin"}``: a photo the family's copy
  of the report attaches.

Every route but the last wants ``Authorization: Bearer <token>``: missing is ``401``, a token
that does not verify ``403``.
"""

from __future__ import annotations

import re
from typing import TypeVar

from aiohttp import hdrs, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from records.errors import ShareLocked, UploadOffset
from records.models import Photo, Upload
from rooms.errors import DomainError
from signaling.auth import AuthError, Identity
from signaling.errors import error_payload, to_wire
from web.http_errors import http_status
from web.keys import authority_key, photos_key, settings_key
from web.share_routes import SHARE_CODE, PinRequest

B = TypeVar("B", bound=BaseModel)

CHUNK_MAX = 256 * 1024
_CONTENT_RANGE = re.compile(r"^bytes (\d{1,10})-(\d{1,10})/(\d{1,10})$")
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,80}$")
_NO_STORE = {"Cache-Control": "no-store, private"}


class StartUpload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    bytes: int = Field(ge=1)


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = {**_NO_STORE, **(headers or {})}

    @classmethod
    def of(cls, error: DomainError) -> _Refused:
        headers: dict[str, str] = {}
        if isinstance(error, UploadOffset):
            headers = _held(error.received)
        return cls(http_status(error), error.code, error.message, headers)

    def response(self) -> web.Response:
        return web.json_response(
            error_payload(self.code, self.message), status=self.status, headers=self.headers
        )


def _identity(request: web.Request) -> Identity:
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _Refused(401, "token_missing", "send Authorization: Bearer <token>")
    try:
        return request.app[authority_key].verify(token.strip())
    except AuthError as exc:
        raise _Refused(403, exc.code, exc.message) from exc


def _id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not _ID.match(value):
        raise _Refused(404, "not_found", "no such " + name.removesuffix("_id"))
    return value


async def _body(request: web.Request, model: type[B], hint: str) -> B:
    """The JSON body as ``model``; ``400`` with the first problem (or ``hint``) otherwise."""
    try:
        return model.model_validate(await request.json())
    except ValidationError as exc:
        error = to_wire(exc)["error"]
        raise _Refused(400, error["code"], error["message"]) from None
    except ValueError:
        raise _Refused(400, "bad_request", hint) from None


def _held(received: int) -> dict[str, str]:
    headers = {"Upload-Offset": str(received)}
    if received:
        headers["Range"] = f"bytes=0-{received - 1}"
    return headers


async def start_upload(request: web.Request) -> web.Response:
    try:
        identity = _identity(request)
        consultation_id = _id(request, "consultation_id")
        body = await _body(request, StartUpload, 'send JSON {"bytes": <size>}')
        upload = await request.app[photos_key].start_upload(identity, consultation_id, body.bytes)
    except DomainError as exc:
        return _Refused.of(exc).response()
    except _Refused as refused:
        return refused.response()
    return web.json_response(
        {"upload_id": upload.upload_id, "bytes": upload.total_bytes, "chunk_max": CHUNK_MAX},
        status=201,
        headers=_NO_STORE,
    )


async def upload_state(request: web.Request) -> web.Response:
    try:
        identity = _identity(request)
        upload = await request.app[photos_key].upload(identity, _id(request, "upload_id"))
    except DomainError as exc:
        return _Refused.of(exc).response()
    except _Refused as refused:
        return refused.response()
    return web.Response(
        status=200,
        headers={**_NO_STORE, **_held(upload.received), "Upload-Length": str(upload.total_bytes)},
    )


async def put_chunk(request: web.Request) -> web.Response:
    try:
        identity = _identity(request)
        upload_id = _id(request, "upload_id")
        start, total, data = await _chunk(request)
        upload, photo = await request.app[photos_key].add_chunk(
            identity, upload_id, start, total, data
        )
    except DomainError as exc:
        return _Refused.of(exc).response()
    except _Refused as refused:
        return refused.response()
    if photo is None:
        return _incomplete(upload)
    return web.json_response(photo.to_wire(), status=201, headers=_NO_STORE)


async def _chunk(request: web.Request) -> tuple[int, int, bytes]:
    """The chunk's first byte offset, the upload's size and the chunk's bytes, checked against
    its ``Content-Range``."""
    match = _CONTENT_RANGE.match(request.headers.get(hdrs.CONTENT_RANGE, ""))
    if match is None:
        raise _Refused(400, "bad_range", "send Content-Range: bytes <first>-<last>/<total>")
    first, last, total = (int(g) for g in match.groups())
    size = last - first + 1
    limit = request.app[settings_key].photo_max_bytes
    if total > limit:
        raise _Refused(413, "too_large", f"a photo may have at most {limit} bytes")
    if size <= 0 or last >= total:
        raise _Refused(400, "bad_range", "the Content-Range is not a range of the upload")
    if size > CHUNK_MAX or request.content_length not in (None, size):
        raise _Refused(
            413 if size > CHUNK_MAX else 400,
            "too_large" if size > CHUNK_MAX else "bad_range",
            f"send chunks of at most {CHUNK_MAX} bytes, as long as their Content-Range says",
        )
    try:
        data = await request.content.readexactly(size)
    except Exception as exc:  # IncompleteReadError, or the client went away
        raise _Refused(400, "bad_range", "the chunk is shorter than its Content-Range") from exc
    if not request.content.at_eof() and await request.content.read(1):
        raise _Refused(400, "bad_range", "the chunk is longer than its Content-Range")
    return first, total, data


def _incomplete(upload: Upload) -> web.Response:
    return web.json_response(
        {"upload_id": upload.upload_id, "received": upload.received, "bytes": upload.total_bytes},
        status=308,
        headers={**_NO_STORE, **_held(upload.received)},
    )


async def get_photo(request: web.Request) -> web.StreamResponse:
    try:
        identity = _identity(request)
        photo, image = await request.app[photos_key].read(identity, _id(request, "photo_id"))
    except DomainError as exc:
        return _Refused.of(exc).response()
    except _Refused as refused:
        return refused.response()
    return _image_response(photo, image)


async def get_shared_photo(request: web.Request) -> web.StreamResponse:
    try:
        share_code, photo_id = request.match_info["share_code"], _id(request, "photo_id")
        if not SHARE_CODE.match(share_code):
            raise _Refused(404, "not_found", "no such report")
        body = await _body(request, PinRequest, 'send JSON {"pin": "123456"}')
        photo, image = await request.app[photos_key].read_shared(share_code, body.pin, photo_id)
    except ShareLocked as exc:
        refused = _Refused.of(exc)
        refused.headers["Retry-After"] = str(int(request.app[settings_key].report_share_lock_s))
        return refused.response()
    except DomainError as exc:
        return _Refused.of(exc).response()
    except _Refused as refused:
        return refused.response()
    return _image_response(photo, image)


def _image_response(photo: Photo, image: bytes) -> web.Response:
    return web.Response(
        body=image,
        content_type=photo.media_type,
        headers={**_NO_STORE, "Content-Disposition": f'inline; filename="{photo.photo_id}"'},
    )


def add_photo_routes(app: web.Application) -> None:
    app.router.add_post("/api/consultations/{consultation_id}/photos", start_upload)
    app.router.add_route("HEAD", "/api/uploads/{upload_id}", upload_state)
    app.router.add_put("/api/uploads/{upload_id}", put_chunk)
    app.router.add_get("/api/photos/{photo_id}", get_photo, allow_head=False)
    app.router.add_post("/api/reports/{share_code}/photos/{photo_id}", get_shared_photo)
