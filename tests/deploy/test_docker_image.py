"""deploy/Dockerfile builds an image that runs as a non-root user and reports healthy. Needs a
running Docker daemon: skipped (with the reason) where there is none."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def why_no_docker() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed"
    info = docker("info", "--format", "{{.ServerVersion}}")
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"the Docker daemon is not reachable: {reason}"
    return None


@pytest.mark.slow
def test_the_image_builds_runs_as_non_root_and_reports_healthy() -> None:
    reason = why_no_docker()
    if reason:
        pytest.skip(reason)
    tag = f"teleconsult-test:{secrets.token_hex(4)}"
    built = docker(
        "build", "-f", str(ROOT / "deploy" / "Dockerfile"), "-t", tag, str(ROOT), timeout=900
    )
    assert built.returncode == 0, built.stderr[-3000:]
    container = None
    try:
        assert docker("run", "--rm", tag, "id", "-u").stdout.strip() != "0"
        assert docker("run", "--rm", tag, "teleconsult", "--version").stdout.startswith(
            "teleconsult "
        )
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        started = docker(
            "run",
            "-d",
            "--health-interval",
            "2s",
            "-e",
            f"TELECONSULT_SECRET={secrets.token_urlsafe(48)}",
            "-e",
            f"TELECONSULT_RECORDING_KEY={key}",
            tag,
        )
        assert started.returncode == 0, started.stderr
        container = started.stdout.strip()
        status = ""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and status != "healthy":
            time.sleep(2)
            state = json.loads(docker("inspect", "--format", "{{json .State}}", container).stdout)
            assert state["Running"], docker("logs", container).stderr[-2000:]
            status = state["Health"]["Status"]
        assert status == "healthy", docker("logs", container).stderr[-2000:]
    finally:
        if container:
            docker("rm", "-f", container)
        docker("rmi", "-f", tag)
