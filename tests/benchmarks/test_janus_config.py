"""Janus's configuration for the relay comparison: what it loads, where it listens, where ICE
gathers; and when Janus cannot run."""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks._janus import janus_missing, write_config


def _libraries(root: Path) -> Path:
    """A fake install with every plugin and transport the Debian package has."""
    for kind, names in {
        "plugins": ["echotest", "videoroom", "streaming", "sip"],
        "transports": ["websockets", "http", "pfunix", "mqtt"],
    }.items():
        (root / kind).mkdir(parents=True)
        for name in names:
            (root / kind / f"libjanus_{name}.so").write_bytes(b"")
    return root


def _settings(text: str) -> dict[str, str]:
    return dict(re.findall(r"^\t(\w+) = (.+)$", text, flags=re.MULTILINE))


def test_only_echotest_and_the_websocket_transport_are_loadable(tmp_path: Path) -> None:
    libraries = _libraries(tmp_path / "lib")
    write_config(tmp_path / "conf", 8188, "127.0.0.2", libraries)
    plugins = list((tmp_path / "conf" / "plugins").iterdir())
    transports = list((tmp_path / "conf" / "transports").iterdir())
    assert [p.name for p in plugins] == ["libjanus_echotest.so"]
    assert [t.name for t in transports] == ["libjanus_websockets.so"]
    assert plugins[0].resolve() == libraries / "plugins" / "libjanus_echotest.so"
    assert list((tmp_path / "conf" / "events").iterdir()) == []
    assert list((tmp_path / "conf" / "loggers").iterdir()) == []


def test_main_file_points_janus_at_the_temporary_folders_and_enforces_the_ice_address(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "conf"
    main = write_config(conf, 8188, "127.0.0.2", _libraries(tmp_path / "lib"))
    settings = _settings(main.read_text())
    assert settings["configs_folder"] == f'"{conf}"'
    assert settings["plugins_folder"] == f'"{conf / "plugins"}"'
    assert settings["transports_folder"] == f'"{conf / "transports"}"'
    assert settings["ice_enforce_list"] == '"127.0.0.2"'
    assert settings["ipv6"] == "false"
    assert settings["broadcast"] == "false"
    # every section is a libconfig group: name, colon, braces
    assert re.findall(r"^(\w+): \{", main.read_text(), flags=re.MULTILINE) == [
        "general",
        "certificates",
        "media",
        "nat",
        "plugins",
        "transports",
        "events",
        "loggers",
    ]


def test_websocket_transport_listens_on_loopback_only_without_admin_or_tls(tmp_path: Path) -> None:
    write_config(tmp_path, 18188, "127.0.0.2", _libraries(tmp_path / "lib"))
    settings = _settings((tmp_path / "janus.transport.websockets.jcfg").read_text())
    assert settings == {
        "json": '"compact"',
        "ws": "true",
        "ws_port": "18188",
        "ws_ip": '"127.0.0.1"',
        "wss": "false",
        "admin_ws": "false",
        "admin_wss": "false",
    }
    echotest = (tmp_path / "janus.plugin.echotest.jcfg").read_text()
    assert _settings(echotest) == {"events": "false"}


def test_writing_twice_into_the_same_folder_works(tmp_path: Path) -> None:
    libraries = _libraries(tmp_path / "lib")
    write_config(tmp_path / "conf", 1, "127.0.0.2", libraries)
    main = write_config(tmp_path / "conf", 2, "127.0.0.2", libraries)
    assert main.exists()


def test_a_missing_binary_plugin_or_transport_is_named(tmp_path: Path) -> None:
    libraries = _libraries(tmp_path / "lib")
    binary = tmp_path / "janus"
    assert janus_missing(str(binary), libraries) == (
        f"{binary} not found (Debian: apt-get install janus)"
    )
    binary.write_bytes(b"")
    assert janus_missing(str(binary), libraries) is None
    (libraries / "transports" / "libjanus_websockets.so").unlink()
    reason = janus_missing(str(binary), libraries)
    assert reason is not None and "libjanus_websockets.so not found" in reason
