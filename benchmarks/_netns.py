"""A private network namespace for a benchmark run: created with ``unshare --net`` for one child
process, holding ``lo`` and a veth pair only, so nothing in it has a route out of the machine.

It exists as long as its processes do. The second address sits on the veth end because some
servers (Janus 1.1) never gather ICE candidates on a loopback interface; it is a loopback address
all the same (127.0.0.2), so every packet stays on loopback addresses inside the namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess

ADDRESS = "127.0.0.2"
LINK, PEER_LINK = "bench0", "bench1"
_IP = "/usr/sbin/ip"


def in_namespace(command: list[str]) -> list[str]:
    """``command`` run in a new, private network namespace."""
    return ["unshare", "--net", "--", *command]


def setup_commands(address: str = ADDRESS) -> list[list[str]]:
    """What brings the namespace's interfaces up: ``lo``, and ``address`` on one end of a veth
    pair whose both ends stay in the namespace."""
    return [
        [_IP, "link", "set", "lo", "up"],
        [_IP, "link", "add", LINK, "type", "veth", "peer", "name", PEER_LINK],
        [_IP, "address", "add", f"{address}/32", "dev", LINK],
        [_IP, "link", "set", LINK, "up"],
        [_IP, "link", "set", PEER_LINK, "up"],
    ]


def current() -> str:
    """This process's network namespace (``net:[inode]``)."""
    return os.readlink("/proc/self/ns/net")


def set_up(host_namespace: str, address: str = ADDRESS) -> None:
    """Bring this private namespace's interfaces up; refuses to touch ``host_namespace``."""
    if current() == host_namespace:
        raise RuntimeError("still in the host's network namespace: its interfaces are left alone")
    for command in setup_commands(address):
        subprocess.run(command, check=True, capture_output=True, timeout=10)


def namespace_missing() -> str | None:
    """Why no private namespace with a veth pair can be made here (``None`` when it can):
    tried once in a throwaway namespace."""
    for tool in ("unshare", _IP):
        if shutil.which(tool) is None:
            return f"{tool} not found (Debian: util-linux, iproute2)"
    probe = in_namespace(setup_commands()[1])
    try:
        subprocess.run(probe, check=True, capture_output=True, timeout=10)
    except subprocess.CalledProcessError as error:
        detail = error.stderr.decode(errors="replace").strip()
        return f"cannot create a private network namespace with a veth pair ({detail}); needs root"
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"cannot create a private network namespace: {error}"
    return None
