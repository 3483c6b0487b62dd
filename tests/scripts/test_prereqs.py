"""scripts/lib/prereqs.sh on a machine without Node.js: it apt-installs what is missing (through
sudo unless root), checks again, and stops with a clear message when it cannot help."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.scripts.bare_machine import (
    ROOT,
    apt_log,
    bare_bin,
    bare_environment,
    clean_copy,
    write_program,
)

ENSURE = "source scripts/lib/prereqs.sh; ensure need_python need_node; echo ready"
NOT_ROOT = '#!/bin/sh\nif [ "$1" = -u ]; then echo 1000; else exec /usr/bin/id "$@"; fi\n'
OLD_PYTHON = '#!/bin/sh\ncase "$2" in *print*) echo 3.9 ;; *) exit 1 ;; esac\n'


def run(
    script: str, folder: Path, cwd: Path = ROOT, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env={**bare_environment(folder), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_root_installs_nodejs_and_npm_without_sudo(tmp_path: Path) -> None:
    folder = bare_bin(tmp_path / "bin")
    done = run(ENSURE, folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ready"
    calls = apt_log(folder).read_text().splitlines()
    assert calls == [
        "apt-get update -qq DEBIAN_FRONTEND=noninteractive",
        "apt-get install -y -qq --no-install-recommends nodejs npm DEBIAN_FRONTEND=noninteractive",
    ]
    assert run(ENSURE, folder).returncode == 0
    assert len(apt_log(folder).read_text().splitlines()) == 2, "nothing missing: no apt-get"


def test_another_user_installs_through_sudo(tmp_path: Path) -> None:
    folder = bare_bin(tmp_path / "bin")
    write_program(folder / "id", NOT_ROOT)
    done = run(ENSURE, folder)
    assert done.returncode == 0, done.stderr
    calls = apt_log(folder).read_text().splitlines()
    assert calls[0] == "sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq"
    assert calls[2].startswith("sudo env DEBIAN_FRONTEND=noninteractive apt-get install")
    assert calls[3].endswith("nodejs npm DEBIAN_FRONTEND=noninteractive")


def test_another_user_without_sudo_is_told_what_to_install(tmp_path: Path) -> None:
    folder = bare_bin(tmp_path / "bin")
    write_program(folder / "id", NOT_ROOT)
    (folder / "sudo").unlink()
    done = run(ENSURE, folder)
    assert done.returncode == 1
    assert "missing: nodejs npm: run as root or install them" in done.stderr
    assert not apt_log(folder).exists()


def test_a_package_that_does_not_provide_its_program_stops_setup(tmp_path: Path) -> None:
    folder = bare_bin(tmp_path / "bin", leave_out=("redis-sentinel",))
    done = run(
        "source scripts/lib/prereqs.sh; ensure need_node redis-sentinel:redis-sentinel; echo ready",
        folder,
    )
    assert done.returncode == 1
    assert "still missing after apt-get install nodejs npm redis-sentinel: redis-sentinel" in (
        done.stderr
    )
    assert "ready" not in done.stdout


def test_an_old_python_is_refused_with_the_package_to_install(tmp_path: Path) -> None:
    folder = bare_bin(tmp_path / "bin")
    write_program(folder / "python3", OLD_PYTHON)
    done = run(ENSURE, folder)
    assert done.returncode == 1
    assert "teleconsult needs Python >= 3.11" in done.stderr
    assert "is 3.9" in done.stderr and "python3.11-venv" in done.stderr
    assert not apt_log(folder).exists()


def test_a_python_named_in_python_that_is_not_there_is_refused(tmp_path: Path) -> None:
    folder = bare_bin(tmp_path / "bin")
    done = run(ENSURE, folder, PYTHON="python3.99")
    assert done.returncode == 1
    assert "PYTHON=python3.99 is not a command" in done.stderr
    assert not apt_log(folder).exists()


def test_scripts_test_asks_for_the_servers_the_suite_needs(tmp_path: Path) -> None:
    folder = bare_bin(tmp_path / "bin", leave_out=("redis-sentinel", "turnserver"))
    # An apt-get whose install fails: scripts/test stops right after asking for its list.
    write_program(
        folder / "apt-get",
        f'#!/bin/sh\necho "$*" >> "{apt_log(folder)}"\n[ "$1" != install ] || exit 100\n',
    )
    project = clean_copy(tmp_path / "project")
    done = run("bash scripts/test", folder, cwd=project)
    assert done.returncode == 100
    update, install = apt_log(folder).read_text().splitlines()
    assert update == "update -qq"
    assert install.split()[:5] == ["install", "-y", "-qq", "--no-install-recommends", "nodejs"]
    assert install.split()[5:] == ["npm", "redis-sentinel", "coturn"]
    assert not (project / ".venv").exists()
