"""deploy/: the production TOML lists every setting with its default and passes check-config once
filled in; the systemd unit, logrotate rule, nginx site, Dockerfile and compose file agree with the
code, docs/deploy.md and each other."""

from __future__ import annotations

import fnmatch
import re
import secrets
import shutil
import subprocess
import sys
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from web.cli import main
from web.settings import Settings, _convert, setting_names

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
TOML = DEPLOY / "teleconsult.toml"
UNIT = DEPLOY / "teleconsult.service"
DATA_DIR = "/var/lib/teleconsult"
_KEY_LINE = re.compile(r"^(#\s*)?([a-z_]+) = (.*)$")
_DEFAULTS = {f.name: f.default for f in fields(Settings)}


def toml_lines() -> list[tuple[bool, str, str]]:
    """(commented, name, value) for every ``name = value`` line of the production TOML."""
    found = []
    for line in TOML.read_text().splitlines():
        match = _KEY_LINE.match(line)
        if match:
            found.append((match.group(1) is not None, match.group(2), match.group(3)))
    return found


def unit_values(key: str) -> list[str]:
    prefix = key + "="
    return [
        line[len(prefix) :] for line in UNIT.read_text().splitlines() if line.startswith(prefix)
    ]


def test_the_production_toml_lists_every_setting_once() -> None:
    names = [name for _, name, _ in toml_lines()]
    assert sorted(names) == sorted(setting_names()), "deploy/teleconsult.toml drifted"
    assert len(names) == len(set(names))


def test_each_commented_line_shows_the_default() -> None:
    for commented, name, value in toml_lines():
        if not commented:
            continue
        if _DEFAULTS[name] is None:
            # Unset by default: the line is an example; it must still be a valid value.
            if not value.startswith('"<'):
                _convert(name, tomllib.loads(f"v = {value}")["v"])
            continue
        parsed = _convert(name, tomllib.loads(f"v = {value}")["v"])
        assert parsed == _DEFAULTS[name], f"{name}: the file says {value}"


def test_the_filled_in_production_toml_passes_check_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in setting_names():
        monkeypatch.delenv("TELECONSULT_" + name.upper(), raising=False)
    config = tmp_path / "teleconsult.toml"
    text = TOML.read_text().replace(DATA_DIR, str(tmp_path / "data"))
    assert main(["check-config", "--config", str(_written(config, text))]) == 1
    out = capsys.readouterr().out
    assert "FAIL  secret: no secret" in out, "the shipped file fails closed"
    assert "FAIL  public address: public_url 'https://tc.example.org' is the example" in out
    # What README.md's "Install for production" fills in.
    text = text.replace('secret = ""', f'secret = "{secrets.token_urlsafe(48)}"')
    text = text.replace("tc.example.org", "tc.clinic.test")
    _written(config, text)
    assert main(["recording", "new-key", "--config", str(config)]) == 0
    assert main(["check-config", "--config", str(config)]) == 0, capsys.readouterr().out


def _written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_unit_keeps_data_config_and_log_where_the_other_files_expect_them() -> None:
    values = {name: value.strip('"') for _, name, value in toml_lines()}
    state = unit_values("StateDirectory")
    assert state == ["teleconsult"]
    for name in ("recordings_dir", "recording_key_file"):
        assert values[name].startswith(f"/var/lib/{state[0]}/"), name
    assert "--config /etc/teleconsult/teleconsult.toml" in unit_values("ExecStart")[0]
    log_file = unit_values("StandardOutput")[0].removeprefix("append:")
    assert log_file.startswith(f"/var/log/{unit_values('LogsDirectory')[0]}/")
    rotated = (DEPLOY / "logrotate-teleconsult").read_text().split("{", 1)[0].split()[-1]
    assert fnmatch.fnmatch(log_file, rotated), "logrotate misses the unit's log file"
    for hardening in ("ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes"):
        assert hardening in UNIT.read_text().splitlines()
    assert unit_values("Restart") == ["on-failure"]
    assert unit_values("User") == ["teleconsult"]


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # Point it at this checkout's command: verify checks that the programs exist.
    command = Path(sys.executable).parent / "teleconsult"
    unit = tmp_path / "teleconsult.service"
    unit.write_text(UNIT.read_text().replace("/opt/teleconsult/bin/teleconsult", str(command)))
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_nginx_site_proxies_as_docs_deploy_md_says() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text()
    block = docs.split("```nginx", 1)[1].split("```", 1)[0]
    site = {
        _directive(line) for line in (DEPLOY / "nginx-teleconsult.conf").read_text().splitlines()
    }
    wanted = {
        _directive(line)
        for line in block.splitlines()
        if line.strip().startswith(("proxy_", "client_max_body_size", "map ", "default ", "''"))
    }
    assert wanted - site == set()


def _directive(line: str) -> str:
    """A config line without its comment and extra spaces."""
    return " ".join(line.split("#", 1)[0].split())


def test_compose_and_dockerfile_set_only_known_settings() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"teleconsult", "redis", "postgres", "coturn"} <= set(services)
    server = services["teleconsult"]
    assert (
        ROOT / server["build"]["context"].replace("..", ".") / server["build"]["dockerfile"]
    ).is_file()
    known = {"TELECONSULT_" + name.upper() for name in setting_names()}
    assert set(server["environment"]) <= known
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert set(re.findall(r"\b(TELECONSULT_[A-Z_]+)=", dockerfile)) <= known
    assert re.search(r"^USER teleconsult$", dockerfile, re.M), "the image runs as a non-root user"
    assert "HEALTHCHECK" in dockerfile
