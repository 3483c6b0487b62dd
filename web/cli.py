"""The ``teleconsult`` command: ``serve``, ``check-config``, ``nodes``, ``token``, ``recording``,
``db`` and ``bench``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rooms.roles import Role
from signaling.auth import TokenAuthority
from web.db_cli import add_db_commands
from web.recording_cli import add_recording_commands
from web.settings import Settings, SettingsError, check_secret, load_settings

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``8h`` or ``2d`` in seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 90s, 15m, 8h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "store_url": getattr(args, "store", None),
        "records_url": getattr(args, "records_url", None),
        "secret": getattr(args, "secret", None),
        "media_ips": tuple(args.media_ip) if getattr(args, "media_ip", None) else None,
        "announced_ip": getattr(args, "announced_ip", None),
        "media_udp_ports": getattr(args, "media_udp_ports", None),
        "ice_servers": list(args.ice_server) if getattr(args, "ice_server", None) else None,
        "turn_urls": tuple(args.turn_url) if getattr(args, "turn_url", None) else None,
        "turn_secret": getattr(args, "turn_secret", None),
        "turn_ttl_s": getattr(args, "turn_ttl", None),
        "ice_transport_policy": getattr(args, "ice_transport_policy", None),
        "recordings_dir": getattr(args, "recordings", None),
        "production": True if getattr(args, "production", False) else None,
        "log_level": getattr(args, "log_level", None),
        "node_id": getattr(args, "node_id", None),
        "node_capacity": getattr(args, "node_capacity", None),
        "workers": _workers(getattr(args, "workers", None)),
    }
    return load_settings(overrides, config_file=args.config)


def _workers(value: int | None) -> int | None:
    """``--workers`` without a number: one per core."""
    if value == 0:
        from web.workers import default_workers

        return default_workers()
    return value


def _serve(args: argparse.Namespace) -> int:
    from web.recording_wiring import recording_keyring
    from web.server import run_server
    from web.workers import run_workers, worker_settings

    try:
        settings = _settings_from(args).validated()
        recording_keyring(settings)  # production refuses to start without a recording key
        if settings.workers > 1:
            worker_settings(settings, 0)  # a port range too small to share is refused now
    except SettingsError as exc:
        print(f"teleconsult: {exc}", file=sys.stderr)
        return 2
    if settings.workers > 1:
        return run_workers(settings)
    run_server(settings)
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from web.config_check import run_checks

    try:
        settings = _settings_from(args)
    except (OSError, tomllib.TOMLDecodeError, SettingsError) as exc:
        print(f"teleconsult: cannot read the configuration: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run_checks(settings, sys.stdout))


def _nodes(args: argparse.Namespace) -> int:
    from web.node_list import print_nodes

    settings = _settings_from(args)
    if settings.store_backend != "redis" or not settings.store_url:
        print(
            "teleconsult: nodes live in the Redis store: pass --store redis://...", file=sys.stderr
        )
        return 2
    return asyncio.run(print_nodes(settings.store_url, settings.redis_options(), args.json))


def _token(args: argparse.Namespace) -> int:
    settings = _settings_from(args)
    if not settings.secret:
        print("teleconsult: no secret: pass --secret or set TELECONSULT_SECRET", file=sys.stderr)
        return 2
    try:
        check_secret(settings.secret, "the secret")
    except SettingsError as exc:
        print(f"teleconsult: {exc}", file=sys.stderr)
        return 2
    role = Role(args.role)
    services = [s for s in (args.services or "").split(",") if s]
    try:
        token = TokenAuthority(settings.secret).issue(
            role, args.sub, args.name, services, args.ttl, args.consultation
        )
    except ValueError as exc:
        print(f"teleconsult: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _bench(args: argparse.Namespace) -> int:
    try:
        module = importlib.import_module(f"benchmarks.{args.name}")
    except ModuleNotFoundError:
        print(f"teleconsult: no benchmark named {args.name!r}", file=sys.stderr)
        return 2
    result = module.main(args.bench_args)
    return int(asyncio.run(result) if asyncio.iscoroutine(result) else result or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teleconsult", description=__doc__)
    # pyproject.toml holds the one version number; the installed metadata carries it.
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {importlib.metadata.version('teleconsult')}",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the signaling, media and web server")
    serve.add_argument("--config", type=Path, help="TOML file with settings")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8080)")
    serve.add_argument(
        "--store",
        help="store URL: redis://host:port/db or redis+sentinel://host:port,.../db/service "
        "(default: in memory)",
    )
    serve.add_argument(
        "--records-url", help="records database: sqlite:///records.db (default) or postgresql://"
    )
    serve.add_argument("--secret", help="token secret (default: generated for this process)")
    serve.add_argument("--media-ip", action="append", help="IP media binds to (repeatable)")
    serve.add_argument("--announced-ip", help="IP announced in ICE candidates (behind 1:1 NAT)")
    serve.add_argument("--media-udp-ports", help="UDP port range for media, e.g. 40000-40999")
    serve.add_argument("--ice-server", action="append", help="STUN/TURN URL handed to clients")
    serve.add_argument(
        "--turn-url", action="append", help="TURN URL clients get credentials for (repeatable)"
    )
    serve.add_argument(
        "--turn-secret", help="coturn static-auth-secret (prefer TELECONSULT_TURN_SECRET)"
    )
    serve.add_argument(
        "--turn-ttl", type=parse_duration, help="TURN credential lifetime at most, e.g. 4h"
    )
    serve.add_argument(
        "--ice-transport-policy", choices=["all", "relay"], help="relay: clients use TURN only"
    )
    serve.add_argument("--recordings", type=Path, help="folder for recordings")
    serve.add_argument("--production", action="store_true", help="refuse weak or missing secrets")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING")
    serve.add_argument(
        "--workers",
        type=int,
        nargs="?",
        const=0,
        help="run N node processes behind the one port (no N: one per core; needs --store redis)",
    )
    serve.add_argument("--node-id", help="this node's id in the cluster (default: host-pid-random)")
    serve.add_argument(
        "--node-capacity", type=int, help="most consultations whose media this node carries"
    )
    serve.set_defaults(func=_serve)

    check = commands.add_parser(
        "check-config",
        help="check a production configuration (secret, keys, store) without starting",
    )
    check.add_argument("--config", type=Path, help="TOML file with settings")
    check.set_defaults(func=_check_config)

    nodes = commands.add_parser("nodes", help="list the cluster's nodes and their load")
    nodes.add_argument("--config", type=Path, help="TOML file with settings")
    nodes.add_argument(
        "--store",
        help="store URL: redis://host:port/db or redis+sentinel://host:port,.../db/service",
    )
    nodes.add_argument("--json", action="store_true", help="print JSON instead of a table")
    nodes.set_defaults(func=_nodes)

    token = commands.add_parser("token", help="print a signed access token")
    token.add_argument("--config", type=Path, help="TOML file with settings")
    token.add_argument("--secret", help="token secret (default: TELECONSULT_SECRET)")
    token.add_argument("--role", required=True, choices=[r.value for r in Role if r.grantable])
    token.add_argument("--sub", required=True, help="subject id (outlet id, staff id, ...)")
    token.add_argument("--name", help="display name")
    token.add_argument("--services", help="comma-separated services a clinician covers")
    token.add_argument("--consultation", help="the one consultation a guest may join")
    token.add_argument("--ttl", type=parse_duration, default=8 * 3600.0, help="lifetime, e.g. 8h")
    token.set_defaults(func=_token)

    add_recording_commands(commands, _settings_from)
    add_db_commands(commands, _settings_from)

    bench = commands.add_parser("bench", help="run a benchmark from benchmarks/")
    bench.add_argument("name", help="benchmark name: relay, record, weaklink, soak or stats")
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    bench.set_defaults(func=_bench, config=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
