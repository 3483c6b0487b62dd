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
Like :mod:`media.forwarding`, this reaches into private attributes of aiortc 1.16 and aioice
0.13; :func:`check_internals` lists them and a test fails if an upgrade moves them:

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

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import pylibsrtp
from aioice.ice import Connection, StunProtocol
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter, State
from aiortc.rtp import is_rtcp

from media.internals import missing_lines
from media.rtp_packing import NTP_UNIX_OFFSET_S

logger = logging.getLogger(__name__)

_RTP_COMPONENT = 1
_ENDED = object()
# Handlers that waited, finished by tasks: kept here so that none is garbage-collected early.
_finishing: set[asyncio.Task[None]] = set()


def run_eagerly(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` now, up to its first real wait; a task finishes it from there.

    The handlers of a forwarded packet almost never wait, so this saves scheduling a task
    for each packet (what Python 3.12's eager tasks do).
    """
    waiting_on = _advance(coroutine)
    if waiting_on is _ENDED:
        return
    task = asyncio.ensure_future(_finish(coroutine, waiting_on))
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)


def _advance(coroutine: Coroutine[Any, Any, None]) -> Any:
    """Run the coroutine to its next wait: what it waits on, or ``_ENDED`` (ended or failed)."""
    try:
        return coroutine.send(None)
    except StopIteration:
        return _ENDED
    except Exception:
        logger.exception("packet handler failed")
        return _ENDED


async def _finish(coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Drive a coroutine that :func:`run_eagerly` started, from the future it waits on."""
    while waiting_on is not _ENDED:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)  # a bare yield: give the loop one turn
            else:
                await asyncio.wait([waiting_on])
        except asyncio.CancelledError:
            coroutine.close()
            raise
        waiting_on = _advance(coroutine)


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


def check_internals() -> list[str]:
    """Names of the aiortc/aioice internals above that the installed versions lack."""
    return [
        *missing_lines(
            RTCDtlsTransport._recv_next,
            (
                "self.__rx_bytes += len(data)",
                "self.__rx_packets += 1",
                "data = self._rx_srtp.unprotect_rtcp(data)",
                "await self._handle_rtcp_data(data)",
                "data = self._rx_srtp.unprotect(data)",
                "await self._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)",
            ),
        ),
        *missing_lines(
            RTCDtlsTransport._send_rtp,
            (
                "if self._state != State.CONNECTED:",
                "data = self._tx_srtp.protect(data)",
                "await self.transport._send(data)",
                "self.__tx_bytes += len(data)",
                "self.__tx_packets += 1",
            ),
        ),
        *missing_lines(
            RTCDtlsTransport._handle_rtp_data,
            ("receiver = self._rtp_router.route_rtp(packet)",),
        ),
        *missing_lines(
            RtpRouter,
            (
                "self.ssrc_table: dict[int, RtpReceiver] = {}",
                "ssrc_receiver = self.ssrc_table.get(packet.ssrc)",
                "self.__discard(self.ssrc_table, receiver)",
            ),
        ),
        *missing_lines(Connection.data_received, ("self._queue.put_nowait((data, component))",)),
        *missing_lines(
            Connection.__init__,
            ("self._queue: asyncio.Queue[tuple[bytes, int] | None] = asyncio.Queue()",),
        ),
        *missing_lines(Connection.recvfrom, ("result = await self._queue.get()",)),
        *missing_lines(
            Connection.sendto,
            (
                "active_pair = self._nominated.get(component)",
                "await active_pair.protocol.send_data(data, active_pair.remote_addr)",
            ),
        ),
        *missing_lines(StunProtocol.send_data, ("self.transport.sendto(data, addr)",)),
        *missing_lines(
            StunProtocol.datagram_received,
            ("self.receiver.data_received(data, self.local_candidate.component)",),
        ),
    ]
