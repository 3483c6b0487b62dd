"""The console command and the health endpoint."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from rooms.roles import Role
from rooms.tasks import within
from signaling.auth import TokenAuthority
from tests.conftest import TEST_SECRET, RunningServer
from tests.server_process import spawn_server
from web.cli import main, parse_duration


def test_token_command_prints_a_verifiable_token(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "token",
            "--secret",
            TEST_SECRET,
            "--role",
            "specialist",
            "--sub",
            "dr-li",
            "--name",
            "Dr Li",
            "--services",
            "ophthalmology,paediatrics",
            "--ttl",
            "2h",
        ]
    )
    assert code == 0
    identity = TokenAuthority(TEST_SECRET).verify(capsys.readouterr().out.strip())
    assert identity.role is Role.SPECIALIST
    assert identity.services == {"ophthalmology", "paediatrics"}


def test_token_command_refuses_guest_without_consultation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["token", "--secret", TEST_SECRET, "--role", "guest", "--sub", "g"]) == 2
    assert "consultation" in capsys.readouterr().err


def test_token_command_refuses_a_weak_secret(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--secret", "test", "--role", "admin", "--sub", "a"]) == 2
    assert "32" in capsys.readouterr().err


def test_durations() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("15m") == 900
    assert parse_duration("8h") == 8 * 3600


async def test_healthz_reports_status_version_store_uptime(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/healthz") as response:
            body = await response.json()
    assert response.status == 200
    assert body["status"] == "ok"
    assert body["store"] == "memory"
    assert body["version"]
    assert body["uptime_s"] >= 0


async def test_serve_runs_and_stops_cleanly_on_interrupt(tmp_path: Path) -> None:
    server = await spawn_server(tmp_path / "recordings")
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{server.url}/healthz") as response,
        ):
            body = await response.json()
        assert body["status"] == "ok"
        _, output = await server.stop(signal.SIGINT, within_s=15)
    finally:
        await server.ensure_stopped()
    assert server.process.returncode == 0, output
    assert "Traceback" not in output


async def test_serve_refuses_weak_secret_in_production() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "web.cli",
        "serve",
        "--production",
        "--secret",
        "changeme",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = await within(process.communicate(), 15)
    assert process.returncode == 2
    assert b"too weak" in err
