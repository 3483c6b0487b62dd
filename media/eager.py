"""Running a packet handler now instead of scheduling a task for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)

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
