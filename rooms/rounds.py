"""The background round: one scheduler that calls each part's periodic step in order.

Timers are deadlines stored on the consultation and enforced by one round per process at a
time (a store lock); the store's atomic writes make a deadline two processes see fire only once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from rooms.attendance import Attendance
from rooms.connections import Connections
from rooms.errors import StoreUnavailable
from rooms.lifecycle import Lifecycle
from rooms.pairing import Pairing
from rooms.queue_publisher import QueuePublisher
from rooms.store import Store
from rooms.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

_ROUND_LOCK = "rounds"
_ROUND_LOCK_TTL_S = 10.0
# While the store is unreachable rounds back off, doubling the pause up to this.
_MAX_OUTAGE_PAUSE_S = 5.0


class Wakeup:
    """Asks for a round soon; any part calls it after a change that may allow a new pairing."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def __call__(self) -> None:
        self._event.set()

    async def wait(self, timeout_s: float) -> None:
        """Until called or ``timeout_s`` passed; then ready to be called again."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._event.wait()
        self._event.clear()


class RoundScheduler:
    """Runs rounds every ``interval_s`` (or sooner when woken) until stopped."""

    def __init__(
        self,
        store: Store,
        connections: Connections,
        pairing: Pairing,
        attendance: Attendance,
        lifecycle: Lifecycle,
        publisher: QueuePublisher,
        wakeup: Wakeup,
        interval_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._connections = connections
        self._pairing = pairing
        self._attendance = attendance
        self._lifecycle = lifecycle
        self._publisher = publisher
        self._wakeup = wakeup
        self._interval_s = interval_s
        self._clock = clock
        self._node = uuid.uuid4().hex
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        """Whether the background round is going (it survives store outages)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the background round (idempotent)."""
        if self._task is None and not self._stopping:
            self._task = asyncio.create_task(
                self._run(), name=f"consultation-rounds-{self._node[:8]}"
            )

    async def stop(self) -> None:
        """Cancel the background round and wait for it (idempotent)."""
        self._stopping = True
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        """Run rounds until stopped; while the store is unreachable, retry with capped backoff."""
        pause = self._interval_s
        outage_since: float | None = None
        # Checked as well as cancellation: a library call may swallow a CancelledError.
        while not self._stopping:
            await self._wakeup.wait(pause)
            try:
                await self.run_round()
            except StoreUnavailable:
                if outage_since is None:
                    outage_since = self._clock()
                    self._connections.store_unreachable()
                    logger.warning("store unreachable: rounds paused node=%s", self._node[:8])
                pause = min(_MAX_OUTAGE_PAUSE_S, pause * 2)
                continue
            except Exception:
                logger.exception("consultation round failed node=%s", self._node[:8])
            if outage_since is not None:
                self._connections.store_recovered(self._clock())
                logger.warning(
                    "store reachable again after %.1f s: rounds resumed node=%s",
                    self._clock() - outage_since,
                    self._node[:8],
                )
                outage_since = None
            pause = self._interval_s

    async def run_round(self) -> None:
        """Heartbeat, then (for one process at a time) deadlines, pairing and queue pushes."""
        await self._connections.heartbeat()
        if not await self._store.try_lock(_ROUND_LOCK, self._node, _ROUND_LOCK_TTL_S):
            return
        try:
            now = self._clock()
            open_ = await self._store.open_consultations()
            await self._connections.drop_silent(open_, now)
            await self._pairing.expire_offers(open_, now)
            await self._attendance.expire_graces(open_, now)
            await self._lifecycle.end_empty_rooms(open_, now)
            await self._pairing.pair()
            await self._publisher.publish()
        finally:
            await self._store.release_lock(_ROUND_LOCK, self._node)
