"""Photos over HTTP and Socket.IO, black box: asked for, uploaded in chunks (one resent after
a dropped connection), cleaned of metadata, sealed at rest, shown only to whom the access
policy allows, attached to the report, read by the family with its PIN, kept over a restart."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from rooms.roles import Role
from tests.clinical.conftest import Uploader, admitted_guest, jpeg_with_gps, png, start_call
from tests.conftest import RunningServer, start_server
from tests.records.test_care_flow import read_shared, report
from tests.signaling.consultation_peers import Cast
from web.settings import Settings


async def test_a_jpeg_with_gps_comes_back_upright_without_metadata_and_the_same_size(
    cast: Cast, server: RunningServer
) -> None:
    call = await start_call(cast)
    original = jpeg_with_gps((640, 480))
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825), "the input has GPS"
    kiosk = Uploader(server, call.outlet.token)
    status, photo = await kiosk.send(call.consultation_id, original, chunk=16 * 1024)
    assert status == 201, photo
    assert (photo["width"], photo["height"]) == (640, 480)
    assert photo["by"] == "outlet-1" and photo["taken_at"].endswith("Z")
    assert photo["bytes"] > 0 and photo["photo_id"].startswith("ph-")

    progress = [p["received"] for p in call.doctor.pushes["photo.progress"]]
    assert progress and progress == sorted(progress) and progress[-1] < len(original)
    pushed = await call.doctor.next("photo.added")
    assert pushed["photo"]["photo_id"] == photo["photo_id"]
    status, image = await Uploader(server, call.doctor.token).photo(photo["photo_id"])
    assert status == 200
    got = Image.open(io.BytesIO(image))
    assert got.format == "JPEG" and got.size == (640, 480)
    assert dict(got.getexif()) == {} and "exif" not in got.info
    listed = await call.doctor.ok("photo.list", {"consultation_id": call.consultation_id})
    assert [p["photo_id"] for p in listed["photos"]] == [photo["photo_id"]]


async def test_orientation_is_applied_before_the_metadata_goes(
    cast: Cast, server: RunningServer
) -> None:
    call = await start_call(cast)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    out = io.BytesIO()
    Image.new("RGB", (400, 100), (10, 10, 10)).save(out, "JPEG", exif=exif)
    status, photo = await Uploader(server, call.outlet.token).send(
        call.consultation_id, out.getvalue()
    )
    assert status == 201 and (photo["width"], photo["height"]) == (100, 400)


async def test_png_is_accepted_and_other_bytes_are_415(cast: Cast, server: RunningServer) -> None:
    call = await start_call(cast)
    kiosk = Uploader(server, call.outlet.token)
    status, photo = await kiosk.send(call.consultation_id, png((300, 200)))
    assert status == 201 and (photo["width"], photo["height"]) == (300, 200)
    status, image = await kiosk.photo(photo["photo_id"])
    assert status == 200 and Image.open(io.BytesIO(image)).format == "PNG"
    status, body = await kiosk.send(call.consultation_id, b"%PDF-1.4 not an image" * 20)
    assert status == 415 and body["error"]["code"] == "unsupported_media_type"


async def test_too_many_bytes_or_pixels_is_413(cast: Cast, server: RunningServer) -> None:
    call = await start_call(cast)
    kiosk = Uploader(server, call.outlet.token)
    status, body = await kiosk.start(call.consultation_id, server.settings.photo_max_bytes + 1)
    assert status == 413 and body["error"]["code"] == "too_large"
    # A small file of a great many pixels (a decompression bomb in miniature).
    wide = io.BytesIO()
    Image.new("L", (9000, 5000)).save(wide, "PNG")
    assert len(wide.getvalue()) < 200_000
    status, body = await kiosk.send(call.consultation_id, wide.getvalue())
    assert status == 413 and body["error"]["code"] == "too_large", body


async def test_tokens_and_the_access_policy(cast: Cast, server: RunningServer) -> None:
    call = await start_call(cast)
    status, photo = await Uploader(server, call.outlet.token).send(
        call.consultation_id, jpeg_with_gps((64, 48))
    )
    assert status == 201
    pid = photo["photo_id"]
    assert (await Uploader(server, None).photo(pid))[0] == 401
    assert (await Uploader(server, "forged." + call.outlet.token[7:]).photo(pid))[0] == 403
    other_outlet = server.token(Role.OUTLET, "outlet-2")
    stranger = server.token(Role.SPECIALIST, "dr-z", services=("ophthalmology",))
    guest = server.token(Role.GUEST, "guest-x", consultation_id=call.consultation_id)
    for token in (other_outlet, stranger, guest):
        assert (await Uploader(server, token).photo(pid))[0] == 403
    admin = server.token(Role.ADMIN, "admin-1")
    assert (await Uploader(server, admin).photo(pid))[0] == 200
    # Uploading into someone else's consultation is refused too.
    status, body = await Uploader(server, other_outlet).start(call.consultation_id, 100)
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert (await Uploader(server, None).start(call.consultation_id, 100))[0] == 401
    admin_peer = await cast.join(Role.ADMIN, "admin-1")
    audit = await admin_peer.ok("audit.list", {"consultation_id": call.consultation_id})
    actions = [e["action"] for e in audit["events"]]
    assert "photo_added" in actions and actions.count("photo_viewed") == 1


async def test_a_chunk_lost_to_a_dropped_connection_is_resent_not_restarted(
    cast: Cast, server: RunningServer
) -> None:
    call = await start_call(cast)
    data = jpeg_with_gps((800, 600))
    kiosk = Uploader(server, call.outlet.token)
    status, started = await kiosk.start(call.consultation_id, len(data))
    assert status == 201
    upload_id, total, chunk = started["upload_id"], len(data), 8 * 1024
    status, body, headers = await kiosk.put(upload_id, data[:chunk], 0, chunk - 1, total)
    assert status == 308 and headers["Range"] == f"bytes=0-{chunk - 1}"
    # The second chunk's connection drops halfway through its body.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.settings.port)
    writer.write(
        (
            f"PUT /api/uploads/{upload_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {call.outlet.token}\r\n"
            f"Content-Range: bytes {chunk}-{2 * chunk - 1}/{total}\r\n"
            f"Content-Length: {chunk}\r\n\r\n"
        ).encode()
        + data[chunk : chunk + chunk // 2]
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.2)
    assert await kiosk.held(upload_id) == chunk, "nothing of the cut chunk is kept"
    # The first chunk again (its answer was lost, say): accepted, nothing changes.
    status, body, _ = await kiosk.put(upload_id, data[:chunk], 0, chunk - 1, total)
    assert status == 308 and body["received"] == chunk
    # A chunk past what is held: 416 and where to resume.
    status, body, headers = await kiosk.put(
        upload_id, data[2 * chunk : 3 * chunk], 2 * chunk, 3 * chunk - 1, total
    )
    assert status == 416 and headers["Upload-Offset"] == str(chunk)
    first = await kiosk.held(upload_id)
    photo: dict[str, object] = {}
    while first < total:
        part = data[first : first + chunk]
        status, photo, _ = await kiosk.put(upload_id, part, first, first + len(part) - 1, total)
        first += len(part)
    assert status == 201 and (photo["width"], photo["height"]) == (800, 600)
    # The last chunk resent after completion gets the same photo.
    last = (total - 1) // chunk * chunk
    status, again, _ = await kiosk.put(upload_id, data[last:], last, total - 1, total)
    assert status == 201 and again["photo_id"] == photo["photo_id"]
    listed = await call.doctor.ok("photo.list", {"consultation_id": call.consultation_id})
    assert len(listed["photos"]) == 1


def _files_holding(folder: Path, *needles: bytes) -> list[str]:
    """Files under ``folder`` (the records database, its WAL, recordings) holding a needle."""
    return [
        path.name
        for path in folder.rglob("*")
        if path.is_file() and any(needle in path.read_bytes() for needle in needles)
    ]


async def test_photos_and_chat_are_sealed_at_rest_and_survive_a_restart(
    cast: Cast, server: RunningServer, tmp_path: Path
) -> None:
    call = await start_call(cast)
    kiosk = Uploader(server, call.outlet.token)
    _, jpeg = await kiosk.send(call.consultation_id, jpeg_with_gps((320, 240)))
    _, png_photo = await kiosk.send(call.consultation_id, png((50, 40)))
    await call.doctor.ok(
        "chat.send", {"consultation_id": call.consultation_id, "text": "秘密 note"}
    )
    await call.doctor.ok("consultation.end", {"consultation_id": call.consultation_id})
    await cast.close()
    await server.runner.cleanup()
    assert _files_holding(tmp_path, b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"Exif") == []
    assert _files_holding(tmp_path, "秘密".encode()) == []

    again = await start_server(server.settings)
    try:
        outlet = Uploader(again, call.outlet.token)
        status, image = await outlet.photo(jpeg["photo_id"])
        assert status == 200 and Image.open(io.BytesIO(image)).size == (320, 240)
        assert (await outlet.photo(png_photo["photo_id"]))[0] == 200
        people = Cast(again)
        admin = await people.join(Role.ADMIN, "admin-1")
        chat = await admin.ok("chat.list", {"consultation_id": call.consultation_id})
        assert [m["text"] for m in chat["messages"]] == ["秘密 note"]
        await people.close()
    finally:
        await again.runner.cleanup()


async def test_the_clinician_asks_for_a_photo_and_only_the_clinician_may(
    cast: Cast, server: RunningServer
) -> None:
    call = await start_call(cast)
    ref = {"consultation_id": call.consultation_id}
    asked = await call.doctor.ok("photo.request", ref)
    assert asked["participant_id"] == "outlet-1"
    requested = await call.outlet.next("photo.requested")
    assert requested["consultation_id"] == call.consultation_id and requested["countdown_s"] > 0
    assert await call.outlet.refused("photo.request", ref) == "forbidden"
    other = await cast.specialist("dr-b")
    assert await other.refused("photo.request", ref) == "forbidden"
    assert await call.doctor.refused("photo.request", {**ref, "participant_id": "nobody"}) == (
        "not_found"
    )
    assert await other.refused("photo.list", ref) == "forbidden"


async def test_attachments_reach_the_family_with_the_pin_and_the_next_clinician(
    cast: Cast, server: RunningServer
) -> None:
    call = await start_call(cast)
    other = await start_call(cast, "outlet-2", "dr-b")
    kiosk = Uploader(server, call.outlet.token)
    _, photo = await kiosk.send(call.consultation_id, jpeg_with_gps((120, 90)))
    _, foreign = await Uploader(server, other.outlet.token).send(
        other.consultation_id, png((10, 10))
    )
    ref = {"consultation_id": call.consultation_id}
    refused = await call.doctor.refused(
        "report.save", {**ref, **report(attachments=[foreign["photo_id"]])}
    )
    assert refused == "bad_attachment"
    await call.doctor.ok("report.save", {**ref, **report(attachments=[photo["photo_id"]])})
    final = await call.doctor.ok("report.finalise", ref)
    assert final["report"]["attachments"] == [photo["photo_id"]]
    code, pin = final["share_code"], final["share_pin"]
    status, body = await read_shared(server, code, pin)
    assert status == 200 and body["report"]["attachments"] == [photo["photo_id"]]

    url = f"{server.url}/api/reports/{code}/photos/{photo['photo_id']}"

    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"pin": pin}) as response:
            assert response.status == 200 and response.content_type == "image/jpeg"
        wrong = "000000" if pin != "000000" else "111111"
        async with http.post(url, json={"pin": wrong}) as response:
            assert response.status == 403
        not_attached = f"{server.url}/api/reports/{code}/photos/{foreign['photo_id']}"
        async with http.post(not_attached, json={"pin": pin}) as response:
            assert response.status == 404

    # The next visit's clinician compares: history lists the photo, and it opens for them.
    await call.doctor.ok("consultation.end", ref)
    dr_c = await cast.specialist("dr-c")
    checked = await call.outlet.ok(
        "consultation.check_in",
        {
            "service": "ophthalmology",
            "outlet_id": "outlet-1",
            "patient_id": call.patient_id,
            "guardian_present": True,
        },
    )
    await dr_c.ok(
        "consultation.accept", {"consultation_id": checked["consultation_id"], "pick": True}
    )
    history = await dr_c.ok("patient.history", {"patient_id": call.patient_id})
    earlier = [v for v in history["visits"] if v["consultation_id"] == call.consultation_id]
    assert earlier[0]["photo_ids"] == [photo["photo_id"]]
    assert (await Uploader(server, dr_c.token).photo(photo["photo_id"]))[0] == 200
    assert (await Uploader(server, other.doctor.token).photo(photo["photo_id"]))[0] == 403


@pytest.fixture
async def strict_server(test_settings: Settings) -> AsyncIterator[RunningServer]:
    running = await start_server(
        replace(test_settings, photo_max_per_consultation=1, photo_pending_uploads=1)
    )
    yield running
    await running.runner.cleanup()


async def test_photos_and_pending_uploads_per_consultation_are_bounded(
    strict_server: RunningServer,
) -> None:
    people = Cast(strict_server)
    try:
        call = await start_call(people)
        kiosk = Uploader(strict_server, call.outlet.token)
        status, started = await kiosk.start(call.consultation_id, 100)
        assert status == 201
        status, body = await kiosk.start(call.consultation_id, 100)
        assert status == 429 and body["error"]["code"] == "too_many_uploads"
        data = png((20, 20))
        upload_id = started["upload_id"]
        status, _, _ = await kiosk.put(upload_id, data, 0, len(data) - 1, len(data))
        assert status == 409, "the declared size differs"
        status, _, _ = await kiosk.put(upload_id, b"x" * 100, 0, 99, 100)
        assert status == 415, "refused bytes free the upload's place"
        status, _ = await kiosk.send(call.consultation_id, data)
        assert status == 201
        status, body = await kiosk.start(call.consultation_id, 100)
        assert status == 429 and body["error"]["code"] == "too_many_photos"
    finally:
        await people.close()


async def test_a_guest_sends_photos_once_admitted_but_does_not_view_them(
    cast: Cast, server: RunningServer
) -> None:
    call = await start_call(cast)
    guest, guest_id = await admitted_guest(cast, server, call)
    phone = Uploader(server, guest.token)
    status, body = await phone.start(call.consultation_id, 100)
    assert status == 403 and body["error"]["code"] == "forbidden", "at the door"
    ref = {"consultation_id": call.consultation_id}
    await call.doctor.ok("consultation.admit", {**ref, "guest_id": guest_id})
    await guest.next("consultation.admitted")
    status, photo = await phone.send(call.consultation_id, png((40, 30)))
    assert status == 201 and photo["by"] == guest_id and photo["by_role"] == "guest"
    assert (await call.outlet.next("photo.added"))["photo"]["photo_id"] == photo["photo_id"]
    assert (await phone.photo(photo["photo_id"]))[0] == 403
    asked = await call.doctor.ok("photo.request", {**ref, "participant_id": guest_id})
    assert asked["participant_id"] == guest_id
    assert (await guest.next("photo.requested"))["consultation_id"] == call.consultation_id
