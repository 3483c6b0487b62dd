"""Recording keys: generated once in development, required in production, rotated by adding."""

from __future__ import annotations

import base64
import secrets
import stat
from pathlib import Path

import pytest

from recording.keys import (
    Keyring,
    RecordingKeyError,
    add_key_to_file,
    key_id_of,
    load_keyring,
    parse_key,
)


def test_development_generates_a_0600_key_file_once_and_reuses_it(tmp_path: Path) -> None:
    key_file = tmp_path / "recordings.keys"
    first = load_keyring(None, None, key_file, production=False)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = load_keyring(None, None, key_file, production=False)
    assert again.current_id == first.current_id and again.current_key == first.current_key


def test_production_refuses_to_run_without_a_key(tmp_path: Path) -> None:
    with pytest.raises(RecordingKeyError, match="production mode needs a recording key"):
        load_keyring(None, None, tmp_path / "recordings.keys", production=True)
    assert not (tmp_path / "recordings.keys").exists()
    with pytest.raises(RecordingKeyError, match="does not exist"):
        load_keyring(None, tmp_path / "missing.keys", tmp_path / "x", production=True)
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    ring = load_keyring(key, None, tmp_path / "x", production=True)
    assert ring.current_key == parse_key(key)


def test_rotation_adds_a_current_key_and_keeps_the_old_ones(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    first_id = add_key_to_file(key_file)
    second_id = add_key_to_file(key_file)
    ring = load_keyring(None, key_file, tmp_path / "unused", production=True)
    assert ring.current_id == second_id and set(ring.keys) == {first_id, second_id}
    given = secrets.token_bytes(32)  # a current key from the environment, older ones from the file
    ring = load_keyring(base64.b64encode(given).decode(), key_file, tmp_path / "x", True)
    assert ring.current_id == key_id_of(given) and {first_id, second_id} < set(ring.keys)


def test_a_key_file_others_can_read_or_a_bad_key_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    add_key_to_file(key_file)
    key_file.chmod(0o644)
    with pytest.raises(RecordingKeyError, match="chmod 600"):
        load_keyring(None, key_file, tmp_path / "x", production=False)
    key_file.write_text("not a key\n")
    key_file.chmod(0o600)
    with pytest.raises(RecordingKeyError, match="line 1"):
        load_keyring(None, key_file, tmp_path / "x", production=False)
    with pytest.raises(RecordingKeyError):
        parse_key(base64.b64encode(b"short").decode())


def test_the_keyring_crosses_to_the_composite_process_as_json() -> None:
    ring = Keyring.of([secrets.token_bytes(32)], secrets.token_bytes(32))
    assert Keyring.from_payload(ring.to_payload()) == ring
