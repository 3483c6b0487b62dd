"""SRTP in and out of a peer connection without aiortc's per-packet task hop and await chain.

aiortc hands each received datagram from aioice's ``Connection.data_received`` to an
``asyncio.Queue`` that the DTLS transport's own task reads: every packet costs a task wake-up
in a later loop iteration, and audio, whose packets arrive one at a time, pays a whole one per
packet. Sending goes down three coroutine layers (``RTCIceTransport._send`` is
``Connection.send``, then ``Connection.sendto``, then ``StunProtocol.send_data``) to one
``DatagramTransport.sendto``.

:func:`receive_directly` makes SRTP and SRTCP be handled as each datagram arrives, running
aiortc's own handlers (unprotect, parse, routing to the receiver) eagerly, and skips aioice's
attempt to parse each of them as a STUN message; DTLS and STUN still go the usual way. An RTP
packet whose SSRC aiortc has already routed to a receiver with a ``receive_unparsed(data,
arrival_time_ms) -> bool`` method (the relay's receivers: they take all but RTX) goes to it as
bytes, skipping aiortc's full parse; ``False`` leaves the packet to aiortc's path. A handler
that does wait (none on the forwarding path does) is finished by a task, so a packet behind it
could overtake it. :func:`send_rtp_now` protects and sends in one call, through the nominated pair's
datagram transport (for a TURN-relayed pair that is aioice's ``TurnTransport``, which wraps each
datagram for the TURN server). Both leave to aiortc's path what theirs does not cover (a
transport not connected yet, a pair whose protocol is not aioice's ``StunProtocol``).
What it relies on of aiortc 1.16 and aioice 0.13 (each listed in
:mod:`media.aiortc_adapter.registry`):

* ``RTCDtlsTransport``: ``_state``, ``_rx_srtp``/``_tx_srtp`` (pylibsrtp sessions),
  ``_handle_rtp_data(data, arrival_time_ms)``, ``_handle_rtcp_data(data)``, ``_rtp_router``
  (whose ``ssrc_table`` maps each routed SSRC to its receiver), the statistics
  counters ``__rx_bytes``/``__rx_packets``/``__tx_bytes``/``__tx_packets`` and ``transport``
  (the ``RTCIceTransport``), whose ``_connection`` is aioice's ``Connection``.
* ``Connection.data_received(data, component)`` (replaced on the instance), ``Connection._queue``
  (what arrived before the switch, taken out and handled in order; ``recvfrom`` reads it) and
  ``Connection._nominated`` (component → the nominated ``CandidatePair``, with ``protocol`` and
  ``remote_addr``); ``StunProtocol.datagram_received`` (replaced on the nominated pair's
  protocol instance), ``StunProtocol.local_candidate`` and ``StunProtocol.transport``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import pylibsrtp
from aioice.ice import Connection, StunProtocol
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtp import is_rtcp

from media.eager import run_eagerly
from media.rtp_packing import NTP_UNIX_OFFSET_S

_RTP_COMPONENT = 1


def receive_directly(dtls: RTCDtlsTransport) -> None:
    """Handle this connected transport's SRTP/SRTCP as each datagram arrives (see above)."""
    connection: Connection = dtls.transport._connection
    queued = connection.data_received
    routed: Mapping[int, object] = dtls._rtp_router.ssrc_table

    def data_received(data: bytes, component: int) -> None:
        if not data:
            return  # aiortc's receive task would fail on it and end the connection
        if not 127 < data[0] < 192 or dtls._rx_srtp is None or dtls._state != State.CONNECTED:
            queued(data, component)
            return
        dtls._RTCDtlsTransport__rx_bytes += len(data)  # type: ignore[attr-defined]
        dtls._RTCDtlsTransport__rx_packets += 1  # type: ignore[attr-defined]
        try:
            if is_rtcp(data):
                handler = dtls._handle_rtcp_data(dtls._rx_srtp.unprotect_rtcp(data))
            else:
                # aiortc's clock.current_ms() (milliseconds since 1900), without a datetime.
                arrival_time_ms = int((time.time() + NTP_UNIX_OFFSET_S) * 1000)
                plain = dtls._rx_srtp.unprotect(data)
                routed_to = (
                    routed.get(int.from_bytes(plain[8:12], "big")) if len(plain) >= 12 else None
                )
                take = getattr(routed_to, "receive_unparsed", None)
                if take is not None and take(plain, arrival_time_ms):
                    return
                handler = dtls._handle_rtp_data(plain, arrival_time_ms=arrival_time_ms)
        except pylibsrtp.Error:
            return
        run_eagerly(handler)

    connection.data_received = data_received  # type: ignore[method-assign]
    _deliver_backlog(connection, data_received)
    pair = connection._nominated.get(_RTP_COMPONENT)
    if pair is not None and type(pair.protocol) is StunProtocol:
        _skip_stun_parsing(pair.protocol, data_received)


def _deliver_backlog(connection: Connection, deliver: Callable[[bytes, int], None]) -> None:
    """Hand what aioice queued before the switch to ``deliver``, in arrival order.

    Left in the queue, the DTLS transport's task would handle those packets after newer ones
    that arrive directly: a subscription starting at a keyframe among them then skipped the
    packets handled before it started, and its receiver reported them lost (20 % of the
    first second; the link was then treated as congested and budgeted). DTLS records go back
    to the queue, in order; the end-of-connection marker (``None``) is put back last.
    """
    queue = connection._queue
    backlog = []
    while not queue.empty():
        backlog.append(queue.get_nowait())
    for item in backlog:
        if item is not None:
            deliver(*item)
    if None in backlog:
        queue.put_nowait(None)


def _skip_stun_parsing(protocol: StunProtocol, deliver: Callable[[bytes, int], None]) -> None:
    """Give SRTP/SRTCP datagrams (first byte 128-191; STUN's is under 4) and empty ones
    straight to ``deliver`` instead of first trying to parse each as a STUN message."""
    parse_stun_first = protocol.datagram_received
    component = protocol.local_candidate.component

    def datagram_received(data: bytes | str, addr: tuple[Any, ...]) -> None:
        if not data or 127 < data[0] < 192:  # type: ignore[operator]
            deliver(data, component)  # type: ignore[arg-type]
        else:
            parse_stun_first(data, addr)

    protocol.datagram_received = datagram_received  # type: ignore[method-assign]


def send_rtp_now(dtls: RTCDtlsTransport, data: bytes) -> bool:
    """Protect and send one RTP packet at once; ``False`` if aiortc's own path must send it.

    Raises ``ConnectionError`` like ``RTCDtlsTransport._send_rtp`` when not connected.
    """
    if dtls._state != State.CONNECTED:
        raise ConnectionError("Cannot send encrypted RTP, not connected")
    pair = dtls.transport._connection._nominated.get(_RTP_COMPONENT)
    if pair is None or type(pair.protocol) is not StunProtocol:
        return False
    protected = dtls._tx_srtp.protect(data)
    pair.protocol.transport.sendto(protected, pair.remote_addr)
    dtls._RTCDtlsTransport__tx_bytes += len(protected)  # type: ignore[attr-defined]
    dtls._RTCDtlsTransport__tx_packets += 1  # type: ignore[attr-defined]
    return True
