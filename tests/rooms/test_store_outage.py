"""A store outage seen by the process running the rounds: nobody is judged silent for it.

During an outage no process can heartbeat its connections, so on recovery every participant
looks silent to the round. The round waits one presence timeout before judging again; a
process that really died is still noticed after that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from records.facade import Records
from rooms.errors import StoreUnavailable
from rooms.service import CheckIn, ConsultationService, ServiceConfig
from rooms.store import Store
from tests.rooms.test_service import ADMIN, OUTLET, Clock, Inbox


class SwitchableStore:
    """Forwards to a real store, or raises :class:`StoreUnavailable` while ``down``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.down = False
        self.calls = 0

    def __getattr__(self, name: str) -> Callable[..., Any]:
        forward = getattr(self._store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.down:
                raise StoreUnavailable()
            return await forward(*args, **kwargs)

        return call


async def until_called(store: SwitchableStore, times: int) -> None:
    """Until the background round has made ``times`` more store calls (bounded: 5 s)."""
    target = store.calls + times
    for _ in range(500):
        if store.calls >= target:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the background round made no store calls")


async def connected(service: ConsultationService, cid: str) -> bool:
    return (await service.get(ADMIN, cid)).participants["outlet-1"].connected


async def test_an_outage_longer_than_the_presence_timeout_drops_nobody(
    store: Store, local_records: Records
) -> None:
    clock, inbox = Clock(), Inbox()
    # empty_room_grace_s sets a fast round interval (0.1 s); nothing here is an active room.
    config = ServiceConfig(rejoin_grace_s=60, presence_timeout_s=10, empty_room_grace_s=0.4)
    # The first holds the outlet's connection.
    outlets = ConsultationService(store, local_records.audit, inbox, config, clock)
    await outlets.connected(OUTLET, "sid-o")
    cid = (await outlets.check_in(OUTLET, CheckIn("ophthalmology", "outlet-1", "P-1", True)))[0].id
    switchable = SwitchableStore(store)
    rounds = ConsultationService(switchable, local_records.audit, inbox, config, clock)  # type: ignore[arg-type]
    await rounds.start()
    try:
        switchable.down = True
        await until_called(switchable, 2)  # the round has met the outage
        clock.now += 15  # longer than the presence timeout: no heartbeat got through
        switchable.down = False
        await until_called(switchable, 10)  # rounds run again
        assert await connected(rounds, cid), "dropped for the store's outage"

        await outlets.heartbeat(force=True)  # the outlet's process beats once the store is back
        clock.now += 9
        await until_called(switchable, 10)
        assert await connected(rounds, cid)

        clock.now += 11  # then that process dies: no beat for longer than the timeout
        await until_called(switchable, 10)
        assert not await connected(rounds, cid), "a dead process is still noticed"
    finally:
        await rounds.close()
        await outlets.close()
