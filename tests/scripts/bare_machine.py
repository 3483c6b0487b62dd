"""A machine without Node.js: a PATH of symlinks to every program here except node and npm, with
stand-ins for apt-get and sudo that record their calls, and a clean copy of the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]
SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
NODE_PROGRAMS = ("node", "nodejs", "npm", "npx", "corepack")
# The stand-in apt-get records each call, then "installs" nodejs and npm by linking the real ones
# into the bare PATH (the Debian packages' programs); any other package stays missing.
FAKE_APT_GET = """#!/bin/sh
echo "apt-get $* DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >> "{log}"
[ "$1" = install ] || exit 0
for package in "$@"; do
  case "$package" in
    nodejs) ln -sf "{node}" "{bin}/node" ;;
    npm) ln -sf "{npm}" "{bin}/npm" ;;
  esac
done
"""
FAKE_SUDO = """#!/bin/sh
echo "sudo $*" >> "{log}"
exec "$@"
"""


def bare_bin(folder: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """``folder`` filled with links to the system's programs, without node/npm and ``leave_out``,
    and with the stand-in apt-get and sudo; the calls they get go to ``folder/../apt.log``."""
    folder.mkdir(parents=True)
    skipped = {*NODE_PROGRAMS, *leave_out, "apt-get", "sudo"}
    for directory in SYSTEM_DIRS:
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            link = folder / entry.name
            if entry.name not in skipped and not link.exists() and os.access(entry.path, os.X_OK):
                link.symlink_to(entry.path)
    log = apt_log(folder)
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "the stand-in apt-get links the real node and npm"
    write_program(folder / "apt-get", FAKE_APT_GET.format(log=log, node=node, npm=npm, bin=folder))
    write_program(folder / "sudo", FAKE_SUDO.format(log=log))
    for program in NODE_PROGRAMS:
        assert shutil.which(program, path=str(folder)) is None, f"{program} is still on the PATH"
    return folder


def apt_log(folder: Path) -> Path:
    return folder.parent / "apt.log"


def write_program(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def bare_environment(folder: Path) -> dict[str, str]:
    """The environment of a fresh login on the bare machine (pip's own settings kept)."""
    keep = ("HOME", "LANG", "TERM", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}
    env["PATH"] = str(folder)
    return env


def clean_copy(target: Path) -> Path:
    """The checkout's files as a fresh clone has them (tracked and new, never ignored ones)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target
