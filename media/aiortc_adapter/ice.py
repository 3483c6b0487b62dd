"""ICE on top of aioice 0.13: local IPs, UDP port range, announced IP, and the selected path.

aioice's ``Connection.gather_candidates`` gathers on ``get_host_addresses()`` (which leaves out
loopback) with sockets bound to port 0. We replace it per connection
(``RTCIceGatherer._connection``, aioice's ``Connection``):

* without a port range, host candidates are gathered only on the configured IPs through aioice's
  own ``get_component_candidates(component, addresses)`` (STUN and TURN work as usual);
* with a port range (``udp_ports=(first, last)``, for a firewall that opens only those), host
  sockets are bound here on a free port of the range, with aioice's ``StunProtocol`` and
  ``Candidate``; server-reflexive candidates come from aioice's ``server_reflexive_candidate``
  and relayed ones from ``get_component_candidates(component, addresses=[])``.

:func:`selected_path` reads which candidate pair ICE nominated (aiortc has no public
selected-pair API), to tell host, server-reflexive and relayed (TURN) paths apart.

Private aioice names used (each listed in :mod:`media.aiortc_adapter.registry`):
``Connection._local_candidates_start/_end``, ``_local_candidates``, ``_components``,
``_protocols``, ``_use_ipv4``, ``_use_ipv6``, ``_nominated``; ``ice.StunProtocol`` and
``ice.server_reflexive_candidate``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aioice import ice as aioice_ice
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.stun import TransactionError
from aiortc import RTCPeerConnection

logger = logging.getLogger(__name__)

_MARK = "_teleconsult_restricted"
_STUN_TIMEOUT_S = 5.0


def _ice_connections(pc: RTCPeerConnection) -> Iterable[Any]:
    for transceiver in pc.getTransceivers():
        yield transceiver.receiver.transport.transport.iceGatherer._connection


@dataclass(frozen=True)
class CandidatePath:
    """The nominated candidate pair of a peer connection, as this end sees it.

    ``relay_protocol`` is how a local relayed candidate reaches its TURN server (``udp``,
    ``tcp`` or ``tls``); ``None`` for other local candidates.
    """

    local_type: str
    remote_type: str
    protocol: str
    relay_protocol: str | None


def selected_path(pc: RTCPeerConnection) -> CandidatePath | None:
    """The candidate pair ICE nominated (first component, bundled), ``None`` before that."""
    for connection in _ice_connections(pc):
        nominated = getattr(connection, "_nominated", {})
        pair = nominated.get(1) if isinstance(nominated, dict) else None
        if pair is None:
            continue
        local, remote = pair.local_candidate, pair.remote_candidate
        relay_protocol = None
        if local.type == "relay":
            relay_protocol = "tls" if connection.turn_ssl else str(connection.turn_transport)
        return CandidatePath(
            str(local.type), str(remote.type), str(local.transport).lower(), relay_protocol
        )
    return None


def restrict_host_addresses(
    pc: RTCPeerConnection, addresses: tuple[str, ...], udp_ports: tuple[int, int] | None = None
) -> None:
    """Gather only on ``addresses`` (and ports ``udp_ports``); call before setLocalDescription."""
    if not addresses and udp_ports is None:
        return
    for connection in _ice_connections(pc):
        if getattr(connection, _MARK, False):
            continue
        setattr(connection, _MARK, True)
        connection.gather_candidates = _restricted_gather(connection, list(addresses), udp_ports)


def _restricted_gather(
    connection: Any, addresses: list[str], udp_ports: tuple[int, int] | None
) -> Any:
    async def gather_candidates() -> None:
        if connection._local_candidates_start:
            return
        connection._local_candidates_start = True
        hosts = addresses or aioice_ice.get_host_addresses(
            use_ipv4=connection._use_ipv4, use_ipv6=connection._use_ipv6
        )
        for component in connection._components:
            if udp_ports is None:
                found = await connection.get_component_candidates(
                    component=component, addresses=hosts
                )
            else:
                found = await _candidates_in_range(connection, component, hosts, udp_ports)
            connection._local_candidates += found
        connection._local_candidates_end = True

    return gather_candidates


async def _candidates_in_range(
    connection: Any, component: int, hosts: list[str], udp_ports: tuple[int, int]
) -> list[Candidate]:
    candidates: list[Candidate] = []
    protocols = []
    for host in hosts:
        protocol = await _bind_in_range(connection, component, host, udp_ports)
        if protocol is not None:
            protocols.append(protocol)
            candidates.append(protocol.local_candidate)
    if connection.stun_server:
        for protocol in protocols:
            if ipaddress.ip_address(protocol.local_candidate.host).version != 4:
                continue
            try:
                async with asyncio.timeout(_STUN_TIMEOUT_S):
                    candidate, _ = await aioice_ice.server_reflexive_candidate(
                        protocol, connection.stun_server
                    )
            except (OSError, TimeoutError, TransactionError):
                continue
            candidates.append(candidate)
    if connection.turn_server:
        candidates += await connection.get_component_candidates(component=component, addresses=[])
    return candidates


async def _bind_in_range(
    connection: Any, component: int, host: str, udp_ports: tuple[int, int]
) -> Any:
    """A STUN protocol bound to a free port of the range on ``host``; ``None`` if all are taken."""
    loop = asyncio.get_running_loop()
    first, last = udp_ports
    ports = list(range(first, last + 1))
    start = random.randrange(len(ports))
    for port in ports[start:] + ports[:start]:
        try:
            _, protocol = await loop.create_datagram_endpoint(
                lambda: aioice_ice.StunProtocol(connection), local_addr=(host, port)
            )
        except OSError:
            continue
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", host),
            component=component,
            transport="udp",
            priority=candidate_priority(component, "host"),
            host=host,
            port=port,
            type="host",
        )
        connection._protocols.append(protocol)
        return protocol
    logger.warning("no free UDP port in %d-%d on %s", first, last, host)
    return None


_HOST_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host)", re.MULTILINE)


_CONNECTION_LINE = re.compile(r"^c=IN IP4 (?!0\.0\.0\.0)\S+", re.MULTILINE)


def announce_address(sdp: str, announced_ip: str | None) -> str:
    """Rewrite host candidates and connection lines to ``announced_ip`` (public IP of a 1:1 NAT)."""
    if not announced_ip:
        return sdp
    sdp = _HOST_CANDIDATE.sub(lambda m: f"{m.group(1)}{announced_ip}{m.group(3)}", sdp)
    return _CONNECTION_LINE.sub(f"c=IN IP4 {announced_ip}", sdp)
