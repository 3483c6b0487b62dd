"""Settings precedence, dev-mode secrets and production refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_video_min_kbps_reaches_the_media_config() -> None:
    settings = load_settings(environ={"TELECONSULT_VIDEO_MIN_KBPS": "80"})
    assert media_config_from(settings).congestion.video_min_kbps == 80.0
    with pytest.raises(SettingsError, match="video_min_kbps"):
        load_settings(environ={"TELECONSULT_VIDEO_MIN_KBPS": "0"})
