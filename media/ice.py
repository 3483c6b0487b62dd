"""ICE address control on top of aioice 0.13: which local IPs are gathered, which IP is announced.

aioice's ``Connection.gather_candidates`` gathers on ``get_host_addresses()``, which leaves out
loopback; we replace it per connection (``RTCIceGatherer._connection``, aioice's ``Connection``)
with one that gathers host candidates only on the configured IPs through aioice's own
``get_component_candidates(component, addresses)``, so STUN/TURN candidates still work.

UDP port range: aioice 0.13 binds every host socket to port 0 inside
``get_component_candidates`` and has no option for a range; supporting one would mean
re-implementing its candidate gathering, so it is not offered. Restrict ports with the firewall
(or run media on a dedicated IP) instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aiortc import RTCPeerConnection

_MARK = "_teleconsult_restricted"


def _ice_connections(pc: RTCPeerConnection) -> Iterable[Any]:
    for transceiver in pc.getTransceivers():
        yield transceiver.receiver.transport.transport.iceGatherer._connection


def restrict_host_addresses(pc: RTCPeerConnection, addresses: tuple[str, ...]) -> None:
    """Gather host candidates only on ``addresses`` (call before ``setLocalDescription``)."""
    if not addresses:
        return
    for connection in _ice_connections(pc):
        if getattr(connection, _MARK, False):
            continue
        setattr(connection, _MARK, True)
        connection.gather_candidates = _restricted_gather(connection, list(addresses))


def _restricted_gather(connection: Any, addresses: list[str]) -> Any:
    async def gather_candidates() -> None:
        if connection._local_candidates_start:
            return
        connection._local_candidates_start = True
        for component in connection._components:
            connection._local_candidates += await connection.get_component_candidates(
                component=component, addresses=addresses
            )
        connection._local_candidates_end = True

    return gather_candidates


_HOST_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host)", re.MULTILINE)


_CONNECTION_LINE = re.compile(r"^c=IN IP4 (?!0\.0\.0\.0)\S+", re.MULTILINE)


def announce_address(sdp: str, announced_ip: str | None) -> str:
    """Rewrite host candidates and connection lines to ``announced_ip`` (public IP of a 1:1 NAT)."""
    if not announced_ip:
        return sdp
    sdp = _HOST_CANDIDATE.sub(lambda m: f"{m.group(1)}{announced_ip}{m.group(3)}", sdp)
    return _CONNECTION_LINE.sub(f"c=IN IP4 {announced_ip}", sdp)


def check_internals() -> list[str]:
    """aioice internals this module needs that are missing (empty when all good)."""
    from aioice import Connection

    connection = Connection(ice_controlling=False)
    problems = [
        name
        for name in (
            "_local_candidates_start",
            "_local_candidates_end",
            "_local_candidates",
            "_components",
            "get_component_candidates",
            "gather_candidates",
        )
        if not hasattr(connection, name)
    ]
    return problems
