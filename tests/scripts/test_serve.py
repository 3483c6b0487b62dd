"""``scripts/serve`` installs only when the project's dependencies changed since it last did."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SERVE = Path(__file__).parents[2] / "scripts" / "serve"


def checkout(tmp_path: Path) -> Path:
    """A project folder with the real ``scripts/serve`` and a setup that only counts its runs."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SERVE, tmp_path / "scripts" / "serve")
    (tmp_path / "scripts" / "setup").write_text(
        "set -e\necho run >> setup-runs\nmkdir -p .venv/bin\n"
        "printf '#!/bin/sh\\necho serving \"$@\"\\n' > .venv/bin/teleconsult\n"
        "chmod +x .venv/bin/teleconsult\n"
    )
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "package-lock.json").write_text("{}\n")
    return tmp_path


def serve(project: Path) -> str:
    done = subprocess.run(
        ["bash", "scripts/serve", "--port", "1"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def setup_runs(project: Path) -> int:
    return len((project / "setup-runs").read_text().splitlines())


def test_setup_runs_first_then_only_after_a_dependency_change(tmp_path: Path) -> None:
    project = checkout(tmp_path)
    assert serve(project).strip().endswith("serving serve --port 1")
    assert setup_runs(project) == 1
    serve(project)
    assert setup_runs(project) == 1, "nothing changed: no install"
    with (project / "pyproject.toml").open("a") as changed:
        changed.write('version = "2"\n')
    serve(project)
    assert setup_runs(project) == 2
    (project / "web" / "package-lock.json").write_text('{"lockfileVersion": 3}\n')
    serve(project)
    assert setup_runs(project) == 3
    shutil.rmtree(project / ".venv")
    serve(project)
    assert setup_runs(project) == 4, "a missing environment is set up again"
