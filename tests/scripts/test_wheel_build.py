"""The wheel build refuses to make a wheel that could not serve the pages: without the pinned
socket.io client in web/node_modules (or with another version) it stops and says what to run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripts.bare_machine import ROOT, clean_copy

PINNED = json.loads((ROOT / "web" / "package.json").read_text())["dependencies"]["socket.io-client"]


def build(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_no_client_or_another_version_builds_no_wheel(tmp_path: Path) -> None:
    source = clean_copy(tmp_path / "source")
    done = build(source, tmp_path / "dist")
    assert done.returncode != 0
    assert (
        "needs socket.io-client 4.8.1 in web/node_modules (found None)" in done.stdout + done.stderr
    )
    assert "run `npm ci` in web/ first" in done.stdout + done.stderr

    client = source / "web" / "node_modules" / "socket.io-client"
    shutil.copytree(ROOT / "web" / "node_modules" / "socket.io-client", client)
    manifest = json.loads((client / "package.json").read_text())
    (client / "package.json").write_text(json.dumps({**manifest, "version": "4.0.0"}))
    done = build(source, tmp_path / "dist")
    assert done.returncode != 0
    assert "(found 4.0.0)" in done.stdout + done.stderr
    assert not (tmp_path / "dist").exists() or not list((tmp_path / "dist").glob("*.whl"))
