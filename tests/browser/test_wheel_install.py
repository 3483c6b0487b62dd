"""The release path: a wheel built from a clean copy (plus the npm-installed client) installs into
a fresh venv, and ``teleconsult serve`` from there, away from the checkout and without npm, serves
every page with the socket.io client, and Chromium connects on each page."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Response, expect

from rooms.tasks import within
from tests.conftest import free_port
from tests.scripts.bare_machine import ROOT, clean_copy

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

SECRET = "wheel-test-secret-" + "w" * 40
TOKEN_PAGES = [
    ("outlet", "/outlet", ["--sub", "outlet-1"]),
    ("specialist", "/specialist", ["--sub", "dr-1", "--services", "ophthalmology"]),
    ("counsellor", "/counsellor", ["--sub", "co-1", "--services", "counselling"]),
    ("admin", "/admin", ["--sub", "admin-1"]),
]


def run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def clean_env() -> dict[str, str]:
    """No TELECONSULT_* settings and no checkout on the import path."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELECONSULT_", "PYTHON", "VIRTUAL_ENV"))
    }


def install_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a clean copy, install it into a new venv; the venv's bin folder."""
    source = clean_copy(tmp_path / "source")
    shutil.copytree(ROOT / "web" / "node_modules", source / "web" / "node_modules", symlinks=True)
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "-w",
        tmp_path / "dist",
        source,
    )
    (wheel,) = (tmp_path / "dist").glob("teleconsult-*.whl")
    run(sys.executable, "-m", "venv", tmp_path / "venv")
    run(tmp_path / "venv" / "bin" / "python", "-m", "pip", "install", "--quiet", wheel)
    return tmp_path / "venv" / "bin"


def installed(tmp_path: Path) -> Path:
    """The installed wheel's bin folder, after checking its version and packaged client."""
    bin_dir = install_wheel(tmp_path)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert run(bin_dir / "teleconsult", "--version").strip() == f"teleconsult {version}"
    where = "import os, web; print(os.path.dirname(web.__file__))"
    package = Path(run(bin_dir / "python", "-c", where, cwd=tmp_path).strip())
    assert package.is_relative_to(tmp_path / "venv"), "the installed copy, not the checkout"
    vendor = package / "vendor"
    assert {
        name: {p.name for p in (vendor / name).iterdir()}
        for name in ("socket.io", "qrcode", "jsqr", "chart.js")
    } == {
        "socket.io": {"socket.io.esm.min.js", "LICENSE"},
        "qrcode": {"qrcode.mjs", "package.json"},  # MIT, named in its package.json
        "jsqr": {"jsQR.js", "LICENSE"},
        "chart.js": {"chart.umd.js", "LICENSE.md"},
    }
    assert not (package / "node_modules").exists()
    return bin_dir


async def wait_healthy(process: asyncio.subprocess.Process, url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(120):
            assert process.returncode is None, "teleconsult serve exited"
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.5)
    pytest.fail("the installed server did not answer /healthz")


async def test_the_installed_wheel_serves_every_page_and_chromium_connects(
    browser: Browser, tmp_path: Path
) -> None:
    bin_dir = await asyncio.to_thread(installed, tmp_path)
    port = free_port()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    server = await asyncio.create_subprocess_exec(
        bin_dir / "teleconsult",
        "serve",
        "--port",
        str(port),
        "--secret",
        SECRET,
        "--media-ip",
        "127.0.0.1",
        cwd=run_dir,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(server, base + "/healthz")
        for role, path, claims in TOKEN_PAGES:
            minted = [bin_dir / "teleconsult", "token", "--secret", SECRET, "--role", role, *claims]
            token = (await asyncio.to_thread(run, *minted)).strip()
            await assert_page_connects(browser, f"{base}{path}#token={token}")
        await assert_page_loads(browser, f"{base}/join/abc123")
        async with aiohttp.ClientSession() as http:
            for packaged in ("/vendor/qrcode/qrcode.mjs", "/vendor/jsqr/jsQR.js"):
                async with http.get(base + packaged) as response:
                    assert response.status == 200, packaged
            async with http.get(base + "/vendor/jsqr/LICENSE") as response:
                assert response.status == 404, "only what the pages load is served"
        # The records database is made and migrated in the working directory.
        assert (run_dir / "records.db").is_file()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            await within(server.wait(), 30)
        except TimeoutError:
            server.kill()
            await server.wait()


async def assert_page_loads(browser: Browser, url: str) -> None:
    """Open ``url`` (a guest link: it loads the socket.io client only once an invite redeems);
    every file it loads from the server is served."""
    context = await browser.new_context()
    page = await context.new_page()
    loaded: list[str] = []
    failed: list[str] = []

    def seen(response: Response) -> None:
        if "/api/" in response.url:
            return
        (failed if response.status >= 400 else loaded).append(f"{response.status} {response.url}")

    page.on("response", seen)
    try:
        await page.goto(url)
        await page.wait_for_load_state("networkidle")
    finally:
        await context.close()
    assert not failed, failed
    assert any("/static/js/guest.js" in entry for entry in loaded), loaded


async def assert_page_connects(browser: Browser, url: str) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    try:
        await page.goto(url)
        await expect(page.locator("#connection")).to_have_attribute(
            "data-state", "connected", timeout=15_000
        )
    finally:
        await context.close()
    assert not failed, failed
