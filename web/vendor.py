"""The npm packages' browser builds the pages load, served under ``/vendor/<name>/<file>``.

``web/package.json`` lists them once (``browserFiles``: a name, the npm package, the files the
pages load). A checkout serves them from ``web/node_modules`` (``npm ci``); a wheel carries
copies that ``setup.py`` put into ``web/vendor/<name>/`` at build time, with their licences.
Only the listed files are served.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

WEB_DIR = Path(__file__).parent
PACKAGE_JSON = WEB_DIR / "package.json"
# A wheel's vendor folders also hold each package's licence: only scripts are served from them.
SCRIPT_SUFFIXES = (".js", ".mjs")


@dataclass(frozen=True)
class BrowserFile:
    """One file a page loads: the npm package it comes from and its path in that package."""

    package: str
    path: str


def browser_files(package_json: Path = PACKAGE_JSON) -> dict[tuple[str, str], BrowserFile]:
    """``(name, file name)`` → the file, as ``package.json`` lists them (empty in a wheel)."""
    if not package_json.is_file():
        return {}
    listed = json.loads(package_json.read_text())["browserFiles"]
    return {
        (name, Path(file).name): BrowserFile(entry["package"], file)
        for name, entry in listed.items()
        for file in entry["files"]
    }


@dataclass
class VendorFiles:
    """Finds a vendor file: the checkout's npm copy when ``package.json`` lists files, else the
    wheel's packaged copy."""

    listed: dict[tuple[str, str], BrowserFile]
    node_modules: Path = WEB_DIR / "node_modules"
    packaged: Path = WEB_DIR / "vendor"

    def find(self, name: str, file_name: str) -> Path | BrowserFile | None:
        """The file to serve (a ``Path``), the listed file a checkout lacks (``BrowserFile``:
        ``npm ci`` was not run), or ``None`` when nothing of that name is served."""
        if not self.listed:
            safe = "/" not in name + file_name and file_name.endswith(SCRIPT_SUFFIXES)
            copy = self.packaged / name / file_name
            return copy if safe and copy.is_file() else None
        listed = self.listed.get((name, file_name))
        if listed is None:
            return None
        path = self.node_modules / listed.package / listed.path
        return path if path.is_file() else listed
