"""Put one Chromium page's media behind a :class:`~benchmarks.link_emulator.LinkEmulator`.

The page's Socket.IO WebSocket is routed through Playwright (``BrowserContext.route_web_socket``)
and every SDP and ICE candidate it exchanges with the server is rewritten by the emulator: the
page's candidates (in ``rtc.offer``/``rtc.answer`` SDP and trickled ``rtc.candidate``) point the
server at the relay, and the server's (in ``rtc.offer`` SDP and in the ack of the page's
``rtc.offer``) point the page at the relay. A trickled candidate the emulator drops (TCP, IPv6,
mDNS, not on loopback) is acknowledged to the page here and never reaches the server. The pages
themselves are unchanged. Chromium must run with ``--allow-loopback-in-peer-connection`` so it
gathers candidates on 127.0.0.1.

Socket.IO frames over the Engine.IO WebSocket look like ``42<ack id>["event", {...}]`` (event)
and ``43<ack id>[{...}]`` (ack); only the default namespace is used by the pages.
"""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.async_api import BrowserContext, WebSocketRoute

from benchmarks.link_emulator import LinkEmulator

_FRAME = re.compile(r"^4([23])(\d*)(\[.*)$", re.DOTALL)
_EVENT, _ACK = "2", "3"


class SignallingRewriter:
    """Rewrites one page's signalling for ``link``; counts what it changed."""

    def __init__(self, link: LinkEmulator) -> None:
        self.link = link
        self.rewritten_sdps = 0
        self.candidates_to_server = 0
        self.candidates_dropped = 0
        self._offer_acks: set[str] = set()

    async def install(self, context: BrowserContext) -> None:
        """Route every Socket.IO WebSocket the context opens through this rewriter."""
        await context.route_web_socket(re.compile(r"/socket\.io/"), self._route)

    def _route(self, page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if isinstance(message, str):
                outgoing, reply = self.from_page(message)
                if reply is not None:
                    page_side.send(reply)
                if outgoing is None:
                    return
                message = outgoing
            server_side.send(message)

        def from_server(message: str | bytes) -> None:
            if isinstance(message, str):
                incoming = self.from_server(message)
                if incoming is None:
                    return
                message = incoming
            page_side.send(message)

        page_side.on_message(from_page)
        server_side.on_message(from_server)

    def from_page(self, frame: str) -> tuple[str | None, str | None]:
        """``(frame for the server or None, frame answered straight to the page or None)``."""
        parsed = _parse(frame)
        if parsed is None or parsed[0] != _EVENT:
            return frame, None
        _, ack_id, payload = parsed
        if not payload or not isinstance(payload[-1], dict):
            return frame, None
        event, body = payload[0], payload[-1]
        if event == "rtc.offer" and ack_id:
            self._offer_acks.add(ack_id)
        if event in ("rtc.offer", "rtc.answer") and isinstance(body.get("sdp"), str):
            body["sdp"] = self.link.participant_sdp(body["sdp"])
            self.rewritten_sdps += 1
            return _frame(_EVENT, ack_id, payload), None
        candidate = body.get("candidate") if event == "rtc.candidate" else None
        text = candidate.get("candidate") if isinstance(candidate, dict) else None
        if not isinstance(candidate, dict) or not isinstance(text, str) or not text:
            return frame, None
        rewritten = self.link.participant_candidate(text)
        if rewritten is None:
            self.candidates_dropped += 1
            return None, (f"43{ack_id}" + json.dumps([{"ok": True}]) if ack_id else None)
        candidate["candidate"] = rewritten
        self.candidates_to_server += 1
        return _frame(_EVENT, ack_id, payload), None

    def from_server(self, frame: str) -> str | None:
        """The frame for the page, or ``None`` for a server candidate that would bypass the link."""
        parsed = _parse(frame)
        if parsed is None:
            return frame
        kind, ack_id, payload = parsed
        if kind == _ACK and ack_id in self._offer_acks:
            self._offer_acks.discard(ack_id)
            answer = payload[0].get("ok") if payload and isinstance(payload[0], dict) else None
            if isinstance(answer, dict) and isinstance(answer.get("sdp"), str):
                answer["sdp"] = self.link.server_sdp(answer["sdp"])
                self.rewritten_sdps += 1
                return _frame(_ACK, ack_id, payload)
        elif kind == _EVENT and len(payload) == 2 and isinstance(payload[1], dict):
            event, body = payload
            if event == "rtc.offer" and isinstance(body.get("sdp"), str):
                body["sdp"] = self.link.server_sdp(body["sdp"])
                self.rewritten_sdps += 1
                return _frame(_EVENT, ack_id, payload)
            if event == "rtc.candidate" and isinstance(body.get("candidate"), dict):
                text = body["candidate"].get("candidate")
                if isinstance(text, str) and text:
                    rewritten = self.link.server_candidate(text)
                    if rewritten is None:
                        return None
                    body["candidate"]["candidate"] = rewritten
                    return _frame(_EVENT, ack_id, payload)
        return frame


def _parse(frame: str) -> tuple[str, str, list[Any]] | None:
    match = _FRAME.match(frame)
    if match is None:
        return None
    try:
        payload = json.loads(match.group(3))
    except ValueError:
        return None
    return (match.group(1), match.group(2), payload) if isinstance(payload, list) else None


def _frame(kind: str, ack_id: str, payload: list[Any]) -> str:
    return f"4{kind}{ack_id}{json.dumps(payload, separators=(',', ':'))}"
