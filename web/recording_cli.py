"""``teleconsult recording``: operator tools for encrypted recordings.

``decrypt FILE --out COPY --operator NAME`` writes a playable copy (0600, never over an existing
file). With a shared (Redis) store the export is audited on the recording's consultation before
anything is decrypted, and refused if it cannot be; with the in-memory store there is no audit
trail to write to, so it runs as an offline tool and says so. ``new-key`` appends a fresh key
to the key file: it becomes the current key, older ones still decrypt what they sealed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from recording.files import DecryptingReader, RecordingFileError
from recording.keys import (
    Keyring,
    RecordingKeyError,
    add_key_to_file,
    default_key_file,
    load_keyring,
)
from web.settings import Settings

SettingsFrom = Callable[[argparse.Namespace], Settings]
_BLOCK = 1024 * 1024


class _Refused(Exception):
    """The command cannot go on; the message says why."""


def add_recording_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], settings_from: SettingsFrom
) -> None:
    recording = commands.add_parser("recording", help="operator tools for encrypted recordings")
    actions = recording.add_subparsers(dest="recording_command", required=True)

    decrypt = actions.add_parser("decrypt", help="write a playable copy of a recording file")
    decrypt.add_argument("file", type=Path, help="an encrypted file under the recordings folder")
    decrypt.add_argument("--out", type=Path, required=True, help="where the playable copy goes")
    decrypt.add_argument("--operator", required=True, help="who exports it (audited)")
    decrypt.add_argument("--config", type=Path, help="TOML file with settings")
    decrypt.set_defaults(func=lambda args: _run(_decrypt, args, settings_from(args)))

    new_key = actions.add_parser("new-key", help="add a new current key to the key file")
    new_key.add_argument("--config", type=Path, help="TOML file with settings")
    new_key.set_defaults(func=lambda args: _run(_new_key, args, settings_from(args)))


def _run(
    command: Callable[[argparse.Namespace, Settings], int], args: argparse.Namespace, s: Settings
) -> int:
    try:
        return command(args, s)
    except (_Refused, RecordingKeyError, RecordingFileError, OSError) as exc:
        print(f"teleconsult: {exc}", file=sys.stderr)
        return 2


def _key_file(settings: Settings) -> Path:
    return settings.recording_key_file or default_key_file(settings.recordings_dir)


def _keyring(settings: Settings) -> Keyring:
    key_file = _key_file(settings)
    if not settings.recording_key and not key_file.exists():
        raise _Refused(
            f"no recording key: set TELECONSULT_RECORDING_KEY or recording_key_file ({key_file})"
        )
    return load_keyring(
        settings.recording_key, key_file if key_file.exists() else None, key_file, True
    )


def _new_key(args: argparse.Namespace, settings: Settings) -> int:
    key_file = _key_file(settings)
    key_id = add_key_to_file(key_file)
    print(f"added recording key {key_id} to {key_file}; new recordings use it from the next start")
    return 0


def _decrypt(args: argparse.Namespace, settings: Settings) -> int:
    keyring = _keyring(settings)
    source: Path = args.file.resolve()
    with DecryptingReader(source, keyring) as reader:
        if settings.store_backend == "redis":
            asyncio.run(_audit_export(settings, source, args.operator))
        else:
            print(
                "teleconsult: not audited: no shared store is configured (offline operator tool)",
                file=sys.stderr,
            )
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as target:
            os.fchmod(target.fileno(), 0o600)
            for offset in range(0, reader.size, _BLOCK):
                target.write(reader.read_at(offset, _BLOCK))
        size = reader.size
    print(f"wrote {size} bytes to {args.out} (key {reader.key_id})")
    return 0


async def _audit_export(settings: Settings, source: Path, operator: str) -> None:
    """Audit the export on the recording's consultation (``<root>/<consultation>/<recording>/``)."""
    from recording.index import RecordingCatalog
    from rooms.audit import AuditAction
    from rooms.models import AuditEvent
    from rooms.roles import Role
    from rooms.service import ServiceConfig
    from rooms.store import create_store

    root = settings.recordings_dir.resolve()
    if not source.is_relative_to(root):
        raise _Refused(f"{source} is not under the recordings folder {root}")
    store = create_store(settings.store_url, redis_options=settings.redis_options())
    try:
        meta = await RecordingCatalog(store).get(source.parent.name)
        if meta is None:
            raise _Refused(f"recording {source.parent.name} is not in the index: export refused")
        event = AuditEvent(
            meta.consultation_id,
            time.time(),
            f"operator:{operator}",
            Role.ADMIN.value,
            AuditAction.RECORDING_EXPORTED.value,
            {"recording_id": meta.recording_id, "file": source.name, "tool": "cli"},
        )
        outcome = await store.append_audit(event, ServiceConfig().max_audit_per_action)
        if outcome == "capped":
            raise _Refused("the consultation's audit trail is full for exports: export refused")
    finally:
        await store.close()
