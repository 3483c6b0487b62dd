"""The README's serve command from a clean copy of the checkout on a machine without Node.js:
set-up installs nodejs and npm with apt-get (a stand-in that records the call and then provides
them), creates the environment, and the server answers /healthz and serves the socket.io client.
Without the apt-get step npm is missing, set-up fails and the server never answers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.scripts.bare_machine import ROOT, apt_log, bare_bin, bare_environment, clean_copy

# Set-up creates a venv and installs the project with its test tools (from the pip cache).
SETUP_TIMEOUT_S = 420


def readme_command(marker: str) -> str:
    """The command between ``<!-- marker -->`` and ``<!-- /marker -->`` in README.md."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split(f"<!-- {marker} -->", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
    commands = [line for line in block.splitlines() if re.match(r"^(bash|\./)", line)]
    assert len(commands) == 1, block
    return commands[0]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.slow
def test_the_readme_serve_command_sets_up_a_machine_without_node(tmp_path: Path) -> None:
    folder = bare_bin(tmp_path / "bin")
    project = clean_copy(tmp_path / "project")
    assert not (project / ".venv").exists() and not (project / "web" / "node_modules").exists()
    port = free_port()
    env = {**bare_environment(folder), "TELECONSULT_PORT": str(port)}
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", "-c", readme_command("serve-command")],
            cwd=project,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        health = wait_for_health(process, f"http://127.0.0.1:{port}/healthz", log)
        assert health["status"] == "ok", health
        calls = apt_log(folder).read_text().splitlines()
        assert any(c.startswith("apt-get install") and " nodejs npm " in c for c in calls), calls
        status, body = get(f"http://127.0.0.1:{port}/vendor/socket.io/socket.io.esm.min.js")
        assert status == 200 and b"io" in body, "npm ci ran: the pages' client is served"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def wait_for_health(process: subprocess.Popen[bytes], url: str, log: Path) -> dict[str, object]:
    deadline = time.monotonic() + SETUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            status, body = get(url)
        except OSError:
            time.sleep(1)
            continue
        if status == 200:
            return dict(json.loads(body))
        time.sleep(1)
    pytest.fail(f"no /healthz within {SETUP_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
