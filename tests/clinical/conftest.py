"""Fixtures and helpers of the photo and chat tests: a call under way, images made in memory,
and an uploader speaking the chunked HTTP protocol."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from PIL import Image

from tests.conftest import RunningServer
from tests.records.test_care_flow import register, visit
from tests.signaling.consultation_peers import Cast, Peer


@pytest.fixture
async def cast(server: RunningServer) -> AsyncIterator[Cast]:
    people = Cast(server)
    yield people
    await people.close()


@dataclass
class Call:
    """An outlet and its specialist in an active consultation of a registered patient."""

    outlet: Peer
    doctor: Peer
    consultation_id: str
    patient_id: str


async def start_call(cast: Cast, outlet_id: str = "outlet-1", doctor_id: str = "dr-a") -> Call:
    outlet = await cast.outlet(outlet_id)
    patient = await register(outlet)
    doctor = await cast.specialist(doctor_id)
    cid = await visit(outlet, outlet_id, patient["patient_id"], doctor)
    return Call(outlet, doctor, cid, patient["patient_id"])


async def admitted_guest(cast: Cast, server: RunningServer, call: Call) -> tuple[Peer, str]:
    """A guest invited by the clinician, at the door; returns it and its participant id."""
    ref = {"consultation_id": call.consultation_id}
    invite = await call.doctor.ok("consultation.invite", {**ref, "guest_role": "parent"})
    async with aiohttp.ClientSession() as http:
        redeem = f"{server.url}/api/invites/{invite['invite_code']}/redeem"
        async with http.post(redeem, json={"name": "Mum"}) as response:
            grant: dict[str, Any] = await response.json()
    guest = await cast.with_token(grant["token"])
    await guest.ok("consultation.join", ref)
    return guest, str(grant["guest_id"])


def jpeg_with_gps(size: tuple[int, int] = (640, 480)) -> bytes:
    """A JPEG of noise (so it is not tiny) carrying EXIF with a GPS position and a camera make."""
    image = Image.frombytes("RGB", size, random.Random(7).randbytes(size[0] * size[1] * 3))
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (39.0, 54.0, 15.0)
    gps[3] = "E"
    gps[4] = (116.0, 23.0, 30.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def png(size: tuple[int, int] = (300, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (0, 120, 200, 255)).save(out, "PNG")
    return out.getvalue()


class Uploader:
    """Speaks the upload protocol with one token."""

    def __init__(self, server: RunningServer, token: str | None) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def start(self, consultation_id: str, size: int) -> tuple[int, dict[str, Any]]:
        url = f"{self.server.url}/api/consultations/{consultation_id}/photos"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json={"bytes": size}, headers=self.headers) as response:
                return response.status, await response.json()

    async def put(
        self, upload_id: str, data: bytes, first: int, last: int, total: int
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers = {**self.headers, "Content-Range": f"bytes {first}-{last}/{total}"}
        url = f"{self.server.url}/api/uploads/{upload_id}"
        async with aiohttp.ClientSession() as http:
            async with http.put(url, data=data, headers=headers) as response:
                return response.status, await response.json(), dict(response.headers)

    async def held(self, upload_id: str) -> int:
        url = f"{self.server.url}/api/uploads/{upload_id}"
        async with aiohttp.ClientSession() as http:
            async with http.head(url, headers=self.headers) as response:
                assert response.status == 200, response.status
                return int(response.headers["Upload-Offset"])

    async def send(
        self, consultation_id: str, data: bytes, chunk: int = 64 * 1024
    ) -> tuple[int, dict[str, Any]]:
        """The whole image in chunks; the last answer."""
        status, started = await self.start(consultation_id, len(data))
        if status != 201:
            return status, started
        upload_id = started["upload_id"]
        body: dict[str, Any] = {}
        for first in range(0, len(data), chunk):
            part = data[first : first + chunk]
            status, body, _ = await self.put(
                upload_id, part, first, first + len(part) - 1, len(data)
            )
            if status not in (201, 308):
                break
        return status, body

    async def photo(self, photo_id: str) -> tuple[int, bytes]:
        url = f"{self.server.url}/api/photos/{photo_id}"
        async with aiohttp.ClientSession() as http:
            async with http.get(url, headers=self.headers) as response:
                return response.status, await response.read()
