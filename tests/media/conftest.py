"""A media room harness: a real ``MediaRouter`` with real aiortc client peers, no Socket.IO."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from media.config import MediaConfig
from media.downlink import LinkState
from media.metrics import MediaMetrics
from media.router import MediaRouter
from media.stats import ParticipantStats
from tests.media.clients import ClientPeer


class DirectSignals:
    """Delivers router events straight to the test clients."""

    def __init__(self) -> None:
        self.clients: dict[str, ClientPeer] = {}
        self.stats: list[list[ParticipantStats]] = []
        self.link_states: list[tuple[str, LinkState]] = []

    async def send_offer(self, consultation_id: str, participant_id: str, sdp: str) -> None:
        client = self.clients.get(participant_id)
        if client is not None:
            client.on_server_offer(sdp)

    async def send_tracks(
        self, consultation_id: str, participant_id: str, tracks: list[dict[str, Any]]
    ) -> None:
        client = self.clients.get(participant_id)
        if client is not None:
            client.tracks_events.append(tracks)

    async def send_stats(self, consultation_id: str, stats: list[ParticipantStats]) -> None:
        self.stats.append(stats)

    async def send_link_state(
        self, consultation_id: str, participant_id: str, state: LinkState
    ) -> None:
        self.link_states.append((participant_id, state))


class Room:
    """One consultation's router and the clients that joined it."""

    def __init__(self, config: MediaConfig) -> None:
        self.signals = DirectSignals()
        self.registry = CollectorRegistry()
        self.metrics = MediaMetrics(self.registry)
        self.router = MediaRouter("c-test", config, self.metrics, self.signals)

    async def join(self, client: ClientPeer, sources: dict[str, str] | None = None) -> ClientPeer:
        self.signals.clients[client.participant_id] = client

        async def answer(sdp: str) -> None:
            if self.signals.clients.get(client.participant_id) is client:  # not left meanwhile
                await self.router.handle_answer(client.participant_id, sdp)

        client.answer_to = answer

        async def exchange(offer: str) -> str:
            return await self.router.handle_offer(client.participant_id, offer, sources)

        await client.negotiate(exchange)
        return client

    async def leave(self, client: ClientPeer) -> None:
        self.signals.clients.pop(client.participant_id, None)
        await self.router.remove_participant(client.participant_id)
        await client.close()

    async def close(self) -> None:
        await self.router.close()
        for client in list(self.signals.clients.values()):
            await client.close()


def media_config(**overrides: Any) -> MediaConfig:
    values: dict[str, Any] = {"media_ips": ("127.0.0.1",), "stats_interval_s": 0.5}
    values.update(overrides)
    return MediaConfig(**values)


@pytest.fixture
async def room() -> AsyncIterator[Room]:
    harness = Room(media_config())
    yield harness
    await harness.close()
    await asyncio.sleep(0)
