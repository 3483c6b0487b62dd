"""``teleconsult recording``: decrypt (audited in the records database), rotate keys; and
``serve --production`` refusing to start without a recording key."""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from recording.files import EncryptingWriter
from recording.keys import Keyring, load_keyring
from tests.conftest import TEST_SECRET, open_records
from tests.recording.entries import started_entry
from web.cli import main


@pytest.fixture
def recordings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "recordings"
    monkeypatch.setenv("TELECONSULT_RECORDINGS_DIR", str(root))
    monkeypatch.setenv("TELECONSULT_RECORDS_URL", records_url(root))
    for name in ("TELECONSULT_STORE_URL", "TELECONSULT_RECORDING_KEY"):
        monkeypatch.delenv(name, raising=False)
    return root


def records_url(root: Path) -> str:
    return f"sqlite:///{root.with_name('records.db')}"


def keyring_of(root: Path) -> Keyring:
    return load_keyring(None, root.with_name("recordings.keys"), root, production=True)


def sealed_file(root: Path, recording_id: str = "r-1", indexed: bool = True) -> tuple[Path, bytes]:
    """A track file sealed with the current key of the key file beside ``root``, and (unless
    not ``indexed``) its recording's entry in the records database."""
    keyring = keyring_of(root)
    folder = root / "c-1" / recording_id
    folder.mkdir(parents=True)
    data = secrets.token_bytes(200_000)
    path = folder / "p-camera.webm.enc"
    writer = EncryptingWriter(path, keyring)
    writer.write(data)
    writer.close()
    if indexed:

        async def index() -> None:
            records = await open_records(records_url(root), keyring)
            entry = started_entry(recording_id, "c-1", f"c-1/{recording_id}", "ready")
            await records.recordings.save_recording(entry)
            await records.close()

        asyncio.run(index())
    return path, data


def exports(root: Path) -> list[tuple[str, str, dict[str, object]]]:
    """The export entries of consultation c-1's audit trail."""

    async def read() -> list[tuple[str, str, dict[str, object]]]:
        records = await open_records(records_url(root), keyring_of(root))
        audit = await records.audit.audit_for("c-1")
        await records.close()
        return [(e.actor, e.action, e.details) for e in audit]

    return asyncio.run(read())


def test_decrypt_writes_a_private_copy_and_audits_the_export(
    recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recording", "new-key"]) == 0
    path, data = sealed_file(recordings)
    out = tmp_path / "copy.webm"
    assert main(["recording", "decrypt", str(path), "--out", str(out), "--operator", "ops-1"]) == 0
    assert out.read_bytes() == data and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert exports(recordings) == [
        (
            "operator:ops-1",
            "recording_exported",
            {"recording_id": "r-1", "file": "p-camera.webm.enc", "tool": "cli"},
        )
    ]
    assert main(["recording", "decrypt", str(path), "--out", str(out), "--operator", "ops"]) == 2
    assert "exists" in capsys.readouterr().err, "an existing file is never overwritten"


def test_rotation_keeps_old_recordings_readable(
    recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recording", "new-key"]) == 0
    path, data = sealed_file(recordings)  # sealed with key A
    assert main(["recording", "new-key"]) == 0  # key B is current from now on
    key_file = recordings.with_name("recordings.keys")
    ring = load_keyring(None, key_file, recordings, production=True)
    assert len(ring.keys) == 2 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    out = tmp_path / "a.webm"
    assert main(["recording", "decrypt", str(path), "--out", str(out), "--operator", "ops"]) == 0
    assert out.read_bytes() == data
    key_file.write_text(key_file.read_text().splitlines()[1] + "\n")  # key A thrown away
    assert (
        main(["recording", "decrypt", str(path), "--out", str(tmp_path / "b"), "--operator", "o"])
        == 2
    )
    assert "not in the keyring" in capsys.readouterr().err


def test_a_recording_missing_from_the_index_is_not_exported(
    recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recording", "new-key"]) == 0
    orphan, _ = sealed_file(recordings, "r-unknown", indexed=False)
    refused = tmp_path / "orphan.webm"
    assert (
        main(["recording", "decrypt", str(orphan), "--out", str(refused), "--operator", "o"]) == 2
    )
    assert "not in the index" in capsys.readouterr().err and not refused.exists()


def test_production_refuses_to_start_without_a_recording_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    process = subprocess.run(
        [sys.executable, "-m", "web.cli", "serve", "--production"],
        env={**env, "TELECONSULT_SECRET": TEST_SECRET},
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert process.returncode == 2
    assert b"production mode needs a recording key" in process.stderr
    assert not any(tmp_path.iterdir()), "nothing generated, nothing created"
