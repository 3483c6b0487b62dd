"""Server settings: one frozen object built from defaults, a TOML file, the environment and flags.

Only the composition root (``web.app``/``web.cli``) reads these; everything else receives plain
values or small config objects.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from records.database import DEFAULT_RECORDS_URL
from records.templates import FIELD_NAME_PATTERN
from rooms.redis_connection import RedisOptions, is_redis_url, is_sentinel_url, parse_sentinel_url
from signaling.auth import MIN_SECRET_BYTES

ENV_PREFIX = "TELECONSULT_"
MIN_TURN_SECRET_BYTES = 32
ICE_TRANSPORT_POLICIES = ("all", "relay")
_TURN_SCHEMES = ("turn:", "turns:")
_WEAK_SECRETS = frozenset({"secret", "changeme", "password", "teleconsult", "dev", "test"})


class SettingsError(ValueError):
    """The configuration cannot be used (weak secret in production, bad value)."""


@dataclass(frozen=True)
class IceServer:
    """A STUN/TURN server handed to browser clients and used by the server's own ICE agent."""

    urls: str
    username: str | None = None
    credential: str | None = None

    def as_client_dict(self) -> dict[str, str]:
        entry = {"urls": self.urls}
        if self.username is not None:
            entry["username"] = self.username
        if self.credential is not None:
            entry["credential"] = self.credential
        return entry


@dataclass(frozen=True)
class Settings:
    """Everything the server can be configured with."""

    host: str = "127.0.0.1"
    port: int = 8080
    store_url: str | None = None
    records_url: str = DEFAULT_RECORDS_URL
    redis_sentinel_username: str | None = None
    redis_sentinel_password: str | None = field(default=None, repr=False)
    redis_tls: bool = False
    redis_tls_ca_file: Path | None = None
    redis_wait_replicas: int = 1
    redis_wait_timeout_s: float = 1.0
    secret: str = ""
    secret_generated: bool = False
    production: bool = False
    public_url: str | None = None
    media_ips: tuple[str, ...] = ()
    announced_ip: str | None = None
    media_udp_ports: tuple[int, int] | None = None
    ice_servers: tuple[IceServer, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = field(default="", repr=False)
    turn_ttl_s: float = 4 * 3600.0
    ice_transport_policy: str = "all"
    recordings_dir: Path = Path("recordings")
    recording_key: str | None = None
    recording_key_file: Path | None = None
    retention_days: int = 30
    report_edit_hours: float = 24.0
    report_share_days: int = 30
    report_share_lock_s: float = 900.0
    report_templates: tuple[tuple[str, tuple[str, ...]], ...] = ()
    photo_max_bytes: int = 8 * 1024 * 1024
    photo_max_pixels: int = 40_000_000
    photo_max_per_consultation: int = 30
    photo_pending_uploads: int = 3
    photo_upload_ttl_s: float = 900.0
    chat_max_messages: int = 2000
    timezone: str = "Asia/Shanghai"
    no_show_after_min: float = 15.0
    preferred_clinician_wait_s: float = 300.0
    appointment_sweep_s: float = 60.0
    reminder_webhook_url: str | None = None
    reminder_webhook_secret: str = field(default="", repr=False)
    reminder_lead_h: float = 24.0
    reminder_tries: int = 5
    offer_timeout_s: float = 30.0
    rejoin_grace_s: float = 60.0
    empty_room_grace_s: float = 60.0
    presence_timeout_s: float = 10.0
    max_open_consultations_per_outlet: int = 4
    max_invites_per_consultation: int = 10
    max_audit_entries_per_action: int = 100
    queue_push_entries: int = 20
    audit_page_max: int = 200
    ended_retention_s: float = 24 * 3600.0
    max_event_bytes: int = 64 * 1024
    events_per_s: float = 20.0
    event_burst: int = 60
    max_candidates_per_peer: int = 64
    max_connections: int = 2000
    max_connections_per_address: int = 50
    auth_timeout_s: float = 10.0
    allowed_origins: tuple[str, ...] = ()
    metrics_token: str | None = None
    netcheck_downloads_per_min: int = 12
    dev_link_ttl_s: float = 3600.0
    stats_interval_s: float = 3.0
    video_min_kbps: float = 50.0
    log_level: str = "INFO"
    node_id: str | None = None
    node_capacity: int = 20
    node_heartbeat_s: float = 1.0
    node_ttl_s: float = 3.0
    relay_timeout_s: float = 5.0
    drain_timeout_s: float = 3.0
    workers: int = 1

    @property
    def store_backend(self) -> str:
        """The store backend's name as shown on /healthz."""
        return "redis" if is_redis_url(self.store_url) else "memory"

    def redis_options(self) -> RedisOptions:
        """How every Redis client of this process connects (beyond ``store_url``)."""
        return RedisOptions(
            sentinel_username=self.redis_sentinel_username,
            sentinel_password=self.redis_sentinel_password,
            tls=self.redis_tls,
            tls_ca_file=str(self.redis_tls_ca_file) if self.redis_tls_ca_file else None,
            wait_replicas=self.redis_wait_replicas,
            wait_timeout_s=self.redis_wait_timeout_s,
        )

    def validated(self) -> Settings:
        """Return settings with a secret in place; refuse weak secrets in every mode."""
        self.check_ice()
        self.check_nodes()
        self.check_redis()
        self.check_appointments()
        if not self.secret:
            if self.production:
                raise SettingsError("production mode needs TELECONSULT_SECRET (32+ random bytes)")
            return replace(self, secret=secrets.token_urlsafe(48), secret_generated=True)
        check_secret(self.secret, "TELECONSULT_SECRET")
        if self.metrics_token is not None:
            check_secret(self.metrics_token, "TELECONSULT_METRICS_TOKEN")
        return self

    def check_nodes(self) -> None:
        """Refuse node, cluster and worker settings that cannot work together."""
        if self.node_capacity < 0:
            raise SettingsError("node_capacity must be 0 (signalling only) or more")
        if not 0 < self.node_heartbeat_s < self.node_ttl_s:
            raise SettingsError("node_heartbeat_s must be positive and below node_ttl_s")
        if self.relay_timeout_s <= 0 or self.drain_timeout_s <= 0:
            raise SettingsError("relay_timeout_s and drain_timeout_s must be positive")
        if self.workers < 1:
            raise SettingsError("workers must be 1 or more")
        if self.workers > 1 and self.store_backend != "redis":
            raise SettingsError("--workers above 1 needs a Redis store (--store redis://...)")

    def check_redis(self) -> None:
        """Refuse a Sentinel URL without its service and replica waits that cannot work."""
        if is_sentinel_url(self.store_url):
            try:
                parse_sentinel_url(str(self.store_url))
            except ValueError as exc:
                raise SettingsError(f"store_url: {exc}") from None
        if self.redis_wait_replicas < 0 or self.redis_wait_timeout_s <= 0:
            raise SettingsError(
                "redis_wait_replicas must be 0 or more and redis_wait_timeout_s positive"
            )
        if self.redis_tls_ca_file is not None and not self.redis_tls_ca_file.is_file():
            raise SettingsError(f"redis_tls_ca_file {self.redis_tls_ca_file} is not a file")

        """Refuse ICE and TURN settings that cannot work together."""

    def check_appointments(self) -> None:
        """Refuse an unknown time zone and a reminder webhook that cannot be trusted."""
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"timezone {self.timezone!r} is not a known time zone") from exc
        url = self.reminder_webhook_url
        if url is not None:
            if not url.startswith(("https://", "http://")):
                raise SettingsError("reminder_webhook_url must be an http:// or https:// URL")
            if self.production and not url.startswith("https://"):
                raise SettingsError(
                    "production mode sends reminders (a guardian's phone) over https only"
                )
            check_secret(self.reminder_webhook_secret, "reminder_webhook_secret")

    def check_ice(self) -> None:
        if self.ice_transport_policy not in ICE_TRANSPORT_POLICIES:
            raise SettingsError(
                f"ice_transport_policy must be one of {', '.join(ICE_TRANSPORT_POLICIES)}"
            )
        if self.turn_ttl_s <= 0:
            raise SettingsError("turn_ttl_s must be positive")
        bad = [url for url in self.turn_urls if not url.startswith(_TURN_SCHEMES)]
        if bad:
            raise SettingsError(f"turn_urls must be turn: or turns: URLs, not {bad[0]!r}")
        if self.turn_urls and not self.turn_secret:
            raise SettingsError("turn_urls need turn_secret (coturn's static-auth-secret)")
        if (
            self.production
            and self.turn_urls
            and (
                len(self.turn_secret.encode()) < MIN_TURN_SECRET_BYTES
                or self.turn_secret.lower() in _WEAK_SECRETS
            )
        ):
            raise SettingsError(
                "production mode refuses a weak turn_secret: "
                f"use at least {MIN_TURN_SECRET_BYTES} random bytes"
            )
        if self.ice_transport_policy == "relay" and not (
            self.turn_urls or any(s.urls.startswith(_TURN_SCHEMES) for s in self.ice_servers)
        ):
            raise SettingsError("ice_transport_policy = relay needs a TURN server (turn_urls)")


def check_secret(value: str, name: str) -> None:
    """Refuse a secret under :data:`MIN_SECRET_BYTES` bytes or a well-known word."""
    if len(value.encode()) < MIN_SECRET_BYTES or value.lower() in _WEAK_SECRETS:
        raise SettingsError(
            f"{name} is too weak: use at least {MIN_SECRET_BYTES} random bytes "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
        )


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes"}


_CONVERTERS: dict[str, Any] = {
    "port": int,
    "redis_tls": _flag,
    "redis_tls_ca_file": Path,
    "redis_wait_replicas": int,
    "redis_wait_timeout_s": float,
    "retention_days": int,
    "report_edit_hours": lambda v: _positive(float(v)),
    "report_share_days": lambda v: int(_positive(int(v))),
    "report_share_lock_s": lambda v: _positive(float(v)),
    "report_templates": lambda v: _templates(v),
    "photo_max_bytes": lambda v: int(_positive(int(v))),
    "photo_max_pixels": lambda v: int(_positive(int(v))),
    "photo_max_per_consultation": lambda v: int(_positive(int(v))),
    "photo_pending_uploads": lambda v: int(_positive(int(v))),
    "photo_upload_ttl_s": lambda v: _positive(float(v)),
    "chat_max_messages": lambda v: int(_positive(int(v))),
    "max_event_bytes": int,
    "events_per_s": float,
    "event_burst": int,
    "max_candidates_per_peer": int,
    "max_connections": int,
    "max_connections_per_address": int,
    "auth_timeout_s": float,
    "allowed_origins": lambda v: tuple(v) if isinstance(v, list | tuple) else _split(str(v)),
    "netcheck_downloads_per_min": int,
    "dev_link_ttl_s": float,
    "offer_timeout_s": float,
    "no_show_after_min": lambda v: _positive(float(v)),
    "preferred_clinician_wait_s": float,
    "appointment_sweep_s": lambda v: _positive(float(v)),
    "reminder_lead_h": lambda v: _positive(float(v)),
    "reminder_tries": lambda v: int(_positive(int(v))),
    "rejoin_grace_s": float,
    "empty_room_grace_s": float,
    "presence_timeout_s": float,
    "max_open_consultations_per_outlet": int,
    "max_invites_per_consultation": int,
    "max_audit_entries_per_action": int,
    "queue_push_entries": int,
    "audit_page_max": int,
    "ended_retention_s": float,
    "stats_interval_s": float,
    "turn_ttl_s": float,
    "turn_urls": lambda v: tuple(v) if isinstance(v, list | tuple) else _split(str(v)),
    "video_min_kbps": lambda v: _positive(float(v)),
    "node_capacity": int,
    "node_heartbeat_s": float,
    "node_ttl_s": float,
    "relay_timeout_s": float,
    "drain_timeout_s": float,
    "workers": int,
    "recordings_dir": Path,
    "recording_key_file": Path,
    "production": _flag,
    "media_ips": lambda v: tuple(v) if isinstance(v, list | tuple) else _split(str(v)),
    "media_udp_ports": lambda v: _port_range(v),
    "ice_servers": lambda v: tuple(
        _ice_server(x) for x in (v if isinstance(v, list) else _split(str(v)))
    ),
}


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError(f"must be positive, not {value}")
    return value


def _templates(value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Report templates: a TOML table (or JSON text in the environment) of service → list of
    finding field names."""
    table = json.loads(value) if isinstance(value, str) else value
    if isinstance(table, tuple):
        return table
    if not isinstance(table, Mapping):
        raise ValueError("report_templates is a table of service = [field names]")
    pattern = re.compile(FIELD_NAME_PATTERN)
    result = []
    for service, names in table.items():
        if not isinstance(names, list) or not all(
            isinstance(n, str) and pattern.match(n) for n in names
        ):
            raise ValueError(f"report_templates.{service}: a list of lower-case field names")
        result.append((str(service), tuple(names)))
    return tuple(result)


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _port_range(value: Any) -> tuple[int, int]:
    """``"40000-40999"`` or ``[40000, 40999]`` as ``(first, last)``."""
    parts = value.split("-") if isinstance(value, str) else list(value)
    first, last = (int(p) for p in parts)
    if not 1024 <= first <= last <= 65535:
        raise ValueError(f"bad UDP port range {value!r}")
    return first, last


def _ice_server(value: Any) -> IceServer:
    if isinstance(value, IceServer):
        return value
    if isinstance(value, Mapping):
        return IceServer(str(value["urls"]), value.get("username"), value.get("credential"))
    return IceServer(str(value))


def _convert(name: str, value: Any) -> Any:
    convert = _CONVERTERS.get(name)
    try:
        return convert(value) if convert else value
    except (TypeError, ValueError, KeyError) as exc:
        raise SettingsError(f"bad value for {name}: {value!r}") from exc


def setting_names() -> list[str]:
    """The names one can set (file, environment, flags), in declaration order."""
    return [f.name for f in fields(Settings) if f.name != "secret_generated"]


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults < TOML file < environment < explicit overrides (flags)."""
    known = set(setting_names())
    values: dict[str, Any] = {}
    if config_file is not None:
        with config_file.open("rb") as handle:
            data = tomllib.load(handle)
        unknown = set(data) - known
        if unknown:
            raise SettingsError(f"unknown settings in {config_file}: {', '.join(sorted(unknown))}")
        values.update(data)
    env = os.environ if environ is None else environ
    for name in known:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return Settings(**{name: _convert(name, value) for name, value in values.items()})
