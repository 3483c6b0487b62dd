"""The page routes over plain HTTP: headers, the vendored npm packages, the family's report page
and the network-check bounds."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.conftest import RunningServer
from web import pages
from web.keys import vendor_files_key


async def test_pages_are_served_with_strict_headers(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        for path, marker in [
            ("/outlet", "outlet.js"),
            ("/specialist", "console.js"),
            ("/counsellor", "console.js"),
            ("/admin", "admin.js"),
            ("/join/abc123", "guest.js"),
        ]:
            async with http.get(server.url + path) as response:
                assert response.status == 200, path
                assert marker in await response.text()
                assert response.headers["Cache-Control"] == "no-store"
                assert response.headers["Referrer-Policy"] == "no-referrer"
                assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        async with http.get(server.url + "/static/i18n/zh.js") as response:
            assert response.status == 200
            assert "视频问诊" in await response.text()


async def test_the_browser_packages_come_from_node_modules(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        for path, marker in [
            ("/vendor/socket.io/socket.io.esm.min.js", "io"),
            ("/vendor/qrcode/qrcode.mjs", "export const qrcode"),
            ("/vendor/jsqr/jsQR.js", "jsQR"),
        ]:
            async with http.get(server.url + path) as response:
                assert response.status == 200, "run `npm ci` in web/ (scripts/setup does)"
                assert "javascript" in response.headers["Content-Type"]
                assert marker in await response.text()
        for absent in (
            "/vendor/qrcode/qrcode.d.ts",
            "/vendor/ws/index.js",
            "/vendor/jsqr/..%2Fpackage.json",
        ):
            async with http.get(server.url + absent) as response:
                assert response.status == 404, absent
        async with http.get(server.url + "/vendor/socket.io/.package-lock.json") as response:
            assert response.status == 404
        async with http.get(server.url + "/vendor/socket.io/nothing.js") as response:
            assert response.status == 404


async def test_a_missing_client_is_a_clear_503(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.app[vendor_files_key], "node_modules", tmp_path / "absent")
    async with aiohttp.ClientSession() as http:
        for path in ("/vendor/socket.io/socket.io.esm.min.js", "/vendor/jsqr/jsQR.js"):
            async with http.get(server.url + path) as response:
                assert response.status == 503
                assert "npm ci" in await response.text()


async def test_the_family_page_is_served_for_a_share_code_only(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/r/7K2M9QXR4") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/html")
            assert response.headers["Cache-Control"] == "no-store"
            assert "family_report.js" in await response.text()
        for bad in ("/r/short", "/r/lower-case-code", "/r/ABCDEFGHJKMNPQRST1"):
            async with http.get(server.url + bad) as response:
                assert response.status == 404, bad


async def test_network_check_is_bounded(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/api/netcheck/ping") as response:
            assert (await response.json()) == {"ok": True}
        async with http.get(server.url + "/api/netcheck/download?kib=2") as response:
            first = await response.read()
        async with http.get(server.url + "/api/netcheck/download?kib=2") as response:
            second = await response.read()
        assert len(first) == len(second) == 2048 and first != second
        for bad in ("0", "abc", str(pages.MAX_PROBE_KIB + 1)):
            async with http.get(server.url + f"/api/netcheck/download?kib={bad}") as response:
                assert response.status == 400, bad
        async with http.post(server.url + "/api/netcheck/upload", data=b"x" * 100_000) as response:
            assert (await response.json()) == {"received": 100_000}
        too_big = b"x" * (pages.MAX_UPLOAD_BYTES + 1)
        async with http.post(server.url + "/api/netcheck/upload", data=too_big) as response:
            assert response.status == 413
