"""``teleconsult check-config``: a good production config passes; each bad one fails with why."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.conftest import RedisServer, free_port, start_redis
from web.cli import main
from web.config_check import CHECKS, redacted

SECRET = secrets.token_urlsafe(48)


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TELECONSULT_"):
            monkeypatch.delenv(name)


def key_file(folder: Path, mode: int = 0o600, text: str | None = None) -> Path:
    path = folder / "recordings.keys"
    path.write_text(text if text is not None else base64.b64encode(os.urandom(32)).decode() + "\n")
    path.chmod(mode)
    return path


def good_settings(tmp_path: Path, store_url: str) -> dict[str, object]:
    return {
        "production": True,
        "secret": SECRET,
        "recordings_dir": str(tmp_path / "data" / "recordings"),
        "recording_key_file": str(key_file(tmp_path)),
        "store_url": store_url,
        "public_url": "https://tc.clinic.test",
        "records_url": f"sqlite:///{tmp_path / 'data' / 'records.db'}",
    }


def toml(values: dict[str, object]) -> str:
    lines = []
    for name, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else f'"{value}"'
        lines.append(f"{name} = {text}")
    return "\n".join(lines) + "\n"


def check(
    tmp_path: Path, values: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    config = tmp_path / "teleconsult.toml"
    config.write_text(toml(values))
    code = main(["check-config", "--config", str(config)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_good_production_config_passes_every_check(
    tmp_path: Path, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(tmp_path, good_settings(tmp_path, redis_server.url), capsys)
    assert code == 0, out
    assert f"{len(CHECKS)} of {len(CHECKS)} checks passed" in out
    assert "answers PING" in out
    assert "FAIL" not in out
    assert SECRET not in out
    assert not (tmp_path / "data").exists(), "checking creates nothing"


def test_the_memory_store_passes_and_says_what_it_means(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = good_settings(tmp_path, "")
    del values["store_url"]
    code, out = check(tmp_path, values, capsys)
    assert code == 0, out
    assert "store: in memory" in out


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"production": False}, "FAIL  production: production is off"),
        ({"public_url": "http://tc.clinic.test"}, "FAIL  public address: public_url 'http://"),
        ({"public_url": "https://tc.example.org"}, "is the example: use your own name"),
        ({"secret": None}, "FAIL  secret: no secret"),
        ({"secret": "changeme"}, "FAIL  secret: the secret is too weak"),
        ({"metrics_token": "short"}, "FAIL  secret: metrics_token is too weak"),
        (
            {"recording_key_file": None},
            "FAIL  recording keys: production mode needs a recording key",
        ),
        (
            {"recording_key": "bm90IGEga2V5"},
            "FAIL  recording keys: a recording key must be 32 bytes",
        ),
        (
            {"turn_urls": "turn:turn.example.org:3478"},
            "FAIL  media and nodes: turn_urls need turn_secret",
        ),
        (
            {"workers": 2, "store_url": None},
            "FAIL  media and nodes: --workers above 1 needs a Redis",
        ),
        (
            {"store_url": "postgresql://db/x"},
            "FAIL  store: store_url: unsupported scheme 'postgresql'",
        ),
        (
            {"store_url": "redis://:pw@127.0.0.1:{free}/0"},
            "FAIL  store: store_url redis://:***@127.0.0.1:",
        ),
        (
            {"records_url": "postgresql://tc:pw@127.0.0.1:{free}/records"},
            "FAIL  records database: records_url postgresql://tc:***@127.0.0.1:",
        ),
        ({"records_url": "mysql://db/x"}, "FAIL  records database: records_url: unsupported"),
        (
            {"records_url": "sqlite:////dev/null/records.db"},
            "FAIL  records database: records_url: /dev/null cannot be created",
        ),
    ],
)
def test_each_bad_setting_fails_with_its_reason(
    tmp_path: Path,
    redis_server: RedisServer,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, object],
    reason: str,
) -> None:
    values = good_settings(tmp_path, redis_server.url)
    for name, value in change.items():
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value.format(free=free_port()) if isinstance(value, str) else value
    code, out = check(tmp_path, values, capsys)
    assert code == 1, out
    assert reason in out
    assert out.count("FAIL") == 1, out
    assert f"{len(CHECKS) - 1} of {len(CHECKS)} checks passed" in out


def test_a_key_file_others_can_read_fails(
    tmp_path: Path, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    values = good_settings(tmp_path, redis_server.url)
    key_file(tmp_path, mode=0o644)
    code, out = check(tmp_path, values, capsys)
    assert code == 1
    assert "FAIL  recording keys: recording key file" in out and "chmod 600" in out


def test_a_recordings_folder_that_is_a_file_fails(
    tmp_path: Path, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    values = good_settings(tmp_path, redis_server.url)
    (tmp_path / "data").write_text("not a folder")
    code, out = check(tmp_path, values, capsys)
    assert code == 1
    assert "FAIL  recordings folder:" in out and "is not a folder" in out


def test_a_redis_that_refuses_the_password_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    guarded = start_redis(tmp_path)
    try:
        subprocess.run(
            ["redis-cli", "-p", str(guarded.port), "config", "set", "requirepass", "right-one"],
            check=True,
            capture_output=True,
        )
        url = guarded.url.replace("redis://", "redis://:wrong-password@")
        code, out = check(tmp_path, good_settings(tmp_path, url), capsys)
        assert code == 1
        assert "FAIL  store: store_url redis://:***@" in out
        assert "wrong-password" not in out
        url = guarded.url.replace("redis://", "redis://:right-one@")
        assert check(tmp_path, good_settings(tmp_path, url), capsys)[0] == 0
    finally:
        guarded.process.terminate()
        guarded.process.wait(10)


def test_an_unreadable_or_unknown_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "--config", str(tmp_path / "absent.toml")]) == 2
    assert "cannot read the configuration" in capsys.readouterr().err
    config = tmp_path / "typo.toml"
    config.write_text('secrett = "x"\n')
    assert main(["check-config", "--config", str(config)]) == 2
    assert "unknown settings" in capsys.readouterr().err
    config.write_text("secret = \n")
    assert main(["check-config", "--config", str(config)]) == 2


def test_passwords_are_left_out_of_urls() -> None:
    assert redacted("redis://:s3cret@h:6379/0") == "redis://:***@h:6379/0"
    assert redacted("redis://user:s3cret@h/0") == "redis://user:***@h/0"
    assert redacted("redis://h:6379/0") == "redis://h:6379/0"
