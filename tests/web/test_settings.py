"""Settings precedence, dev-mode secrets and production refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from web.cli import _settings_from as settings_from_args
from web.cli import build_parser
from web.media_wiring import media_config_from
from web.settings import IceServer, Settings, SettingsError, load_settings


def test_precedence_is_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "teleconsult.toml"
    config.write_text(
        'port = 9000\nhost = "0.0.0.0"\nmedia_ips = ["10.0.0.5"]\n'
        '[[ice_servers]]\nurls = "turn:turn.example.org"\nusername = "u"\ncredential = "p"\n'
    )
    settings = load_settings(
        {"host": "127.0.0.2"},
        config_file=config,
        environ={"TELECONSULT_PORT": "9100", "TELECONSULT_STORE_URL": "redis://h:1/0"},
    )
    assert settings.host == "127.0.0.2"
    assert settings.port == 9100
    assert settings.media_ips == ("10.0.0.5",)
    assert settings.store_backend == "redis"
    assert settings.ice_servers == (IceServer("turn:turn.example.org", "u", "p"),)


def test_environment_lists_are_comma_separated() -> None:
    settings = load_settings(environ={"TELECONSULT_MEDIA_IPS": "127.0.0.1, 10.1.1.1"})
    assert settings.media_ips == ("127.0.0.1", "10.1.1.1")


def test_unknown_file_settings_and_bad_values_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="prot"):
        load_settings(config_file=config, environ={})
    with pytest.raises(SettingsError, match="port"):
        load_settings(environ={"TELECONSULT_PORT": "eighty"})


def test_dev_mode_generates_a_secret() -> None:
    settings = Settings().validated()
    assert settings.secret_generated and len(settings.secret) >= 32


@pytest.mark.parametrize("secret", ["", "changeme", "short-secret"])
def test_production_refuses_missing_or_weak_secret(secret: str) -> None:
    with pytest.raises(SettingsError):
        Settings(production=True, secret=secret).validated()


def test_production_accepts_a_strong_secret() -> None:
    strong = "k" * 48
    assert Settings(production=True, secret=strong).validated().secret == strong


def test_media_udp_port_range() -> None:
    assert load_settings(
        environ={"TELECONSULT_MEDIA_UDP_PORTS": "40000-40100"}
    ).media_udp_ports == (
        40000,
        40100,
    )
    with pytest.raises(SettingsError, match="media_udp_ports"):
        load_settings(environ={"TELECONSULT_MEDIA_UDP_PORTS": "9-5"})


def test_turn_settings_from_file_environment_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "turn.toml"
    config.write_text(
        'turn_urls = ["turn:turn.example.org:3478?transport=udp", '
        '"turns:turn.example.org:443?transport=tcp"]\nturn_ttl_s = 7200\n'
    )
    settings = load_settings(
        {"ice_transport_policy": "relay"},
        config_file=config,
        environ={"TELECONSULT_TURN_SECRET": "s" * 40},
    ).validated()
    assert settings.turn_urls == (
        "turn:turn.example.org:3478?transport=udp",
        "turns:turn.example.org:443?transport=tcp",
    )
    assert settings.turn_ttl_s == 7200.0
    assert settings.turn_secret == "s" * 40
    assert settings.ice_transport_policy == "relay"
    assert "s" * 40 not in repr(settings)
    env_urls = load_settings(
        environ={"TELECONSULT_TURN_URLS": "turn:a:3478?transport=udp, turn:a:3478?transport=tcp"}
    )
    assert env_urls.turn_urls == ("turn:a:3478?transport=udp", "turn:a:3478?transport=tcp")
    assert Settings().turn_ttl_s == 4 * 3600


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"turn_urls": ("turn:t:3478",)}, "turn_secret"),
        ({"turn_urls": ("stun:t:3478",), "turn_secret": "s" * 40}, "turn_urls"),
        ({"turn_urls": ("turn:t:3478",), "turn_secret": "x", "production": True}, "weak"),
        ({"ice_transport_policy": "relay"}, "TURN"),
        ({"ice_transport_policy": "direct"}, "ice_transport_policy"),
        ({"turn_urls": ("turn:t:3478",), "turn_secret": "s" * 40, "turn_ttl_s": 0}, "turn_ttl_s"),
    ],
)
def test_bad_turn_settings_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings(secret="k" * 48, **values).validated()  # type: ignore[arg-type]


def test_production_accepts_a_strong_turn_secret() -> None:
    settings = Settings(
        production=True, secret="k" * 48, turn_urls=("turn:t:3478",), turn_secret="t" * 40
    )
    assert settings.validated().turn_secret == "t" * 40


def test_turn_flags_of_the_serve_command() -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--turn-url",
            "turn:t.example.org:3478?transport=udp",
            "--turn-url",
            "turns:t.example.org:443?transport=tcp",
            "--turn-ttl",
            "2h",
            "--ice-transport-policy",
            "relay",
        ]
    )
    settings = settings_from_args(args)
    assert settings.turn_urls == (
        "turn:t.example.org:3478?transport=udp",
        "turns:t.example.org:443?transport=tcp",
    )
    assert settings.turn_ttl_s == 7200.0
    assert settings.ice_transport_policy == "relay"


def test_video_min_kbps_reaches_the_media_config() -> None:
    settings = load_settings(environ={"TELECONSULT_VIDEO_MIN_KBPS": "80"})
    assert media_config_from(settings).congestion.video_min_kbps == 80.0
    with pytest.raises(SettingsError, match="video_min_kbps"):
        load_settings(environ={"TELECONSULT_VIDEO_MIN_KBPS": "0"})
