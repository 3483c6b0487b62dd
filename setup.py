"""Build hook: the wheel carries the browser builds the pages load (``browserFiles`` in
web/package.json), copied from web/node_modules when the wheel is built (never committed) with
each package's licence, so an installed server needs no npm."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
WEB = ROOT / "web"
PACKAGED = Path("web") / "vendor"
# What travels with each package's files: its licence (or, where it has none of its own, its
# package.json, which names it).
LICENCE_FILES = ("LICENSE", "LICENSE.md", "LICENCE", "package.json")


def copy_browser_files(target: Path) -> None:
    """Copy every listed file into ``target/<name>/``; refuse a package that is missing or not
    the pinned version."""
    manifest = json.loads((WEB / "package.json").read_text())
    for name, entry in manifest["browserFiles"].items():
        package = entry["package"]
        source = WEB / "node_modules" / package
        wanted = manifest["dependencies"][package]
        try:
            installed = json.loads((source / "package.json").read_text())["version"]
        except FileNotFoundError:
            installed = None
        if installed != wanted:
            raise SystemExit(
                f"the wheel needs {package} {wanted} in web/node_modules (found {installed}): "
                "run `npm ci` in web/ first (scripts/setup does)"
            )
        folder = target / name
        folder.mkdir(parents=True, exist_ok=True)
        for file in entry["files"]:
            shutil.copyfile(source / file, folder / Path(file).name)
        licence = next(name for name in LICENCE_FILES if (source / name).is_file())
        shutil.copyfile(source / licence, folder / licence)


class BuildWithBrowserFiles(build_py):
    """``build_py`` that also places the browser builds into the built package."""

    def run(self) -> None:
        super().run()
        # An editable install serves them straight from web/node_modules.
        if not self.editable_mode:
            copy_browser_files(Path(self.build_lib) / PACKAGED)


setup(cmdclass={"build_py": BuildWithBrowserFiles})
