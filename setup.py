"""Build hook: the wheel carries the pinned socket.io browser client, copied from web/node_modules
when the wheel is built (never committed), so an installed server needs no npm."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
CLIENT = "socket.io-client"
# What the pages load (web/static/js/signal.js) and the licence that must travel with it.
CLIENT_FILES = ("dist/socket.io.esm.min.js", "LICENSE")
PACKAGE_DIR = Path("web") / "vendor" / "socket.io"


def pinned_version() -> str:
    return str(json.loads((ROOT / "web" / "package.json").read_text())["dependencies"][CLIENT])


def copy_client(target: Path) -> None:
    """Copy the installed client into ``target``; refuse a missing or different version."""
    source = ROOT / "web" / "node_modules" / CLIENT
    wanted = pinned_version()
    try:
        installed = json.loads((source / "package.json").read_text())["version"]
    except FileNotFoundError:
        installed = None
    if installed != wanted:
        raise SystemExit(
            f"the wheel needs {CLIENT} {wanted} in web/node_modules (found {installed}): "
            "run `npm ci` in web/ first (scripts/setup does)"
        )
    target.mkdir(parents=True, exist_ok=True)
    for name in CLIENT_FILES:
        shutil.copyfile(source / name, target / Path(name).name)


class BuildWithBrowserClient(build_py):
    """``build_py`` that also places the browser client into the built package."""

    def run(self) -> None:
        super().run()
        # An editable install serves the client straight from web/node_modules.
        if not self.editable_mode:
            copy_client(Path(self.build_lib) / PACKAGE_DIR)


setup(cmdclass={"build_py": BuildWithBrowserClient})
