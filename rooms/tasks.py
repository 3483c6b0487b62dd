"""Background tasks: stopping one (the one way every part does it), a periodic sweep, and a
deadline on one await that never loses a cancellation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (nothing when ``None``) and wait until it has finished; its outcome is
    dropped. A cancellation of the caller itself still propagates."""
    if task is None:
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def every(interval_s: float, step: Callable[[], Awaitable[object]], what: str) -> None:
    """Run ``step`` now and every ``interval_s`` after, until cancelled; a step that fails is
    logged as ``what`` and the next one still runs."""
    while True:
        try:
            await step()
        except Exception:
            logger.exception("%s failed", what)
        await asyncio.sleep(interval_s)


async def within(awaitable: Awaitable[T], timeout_s: float) -> T:
    """``await awaitable``, raising ``TimeoutError`` after ``timeout_s``. Used instead of
    ``asyncio.wait_for``, which on Python 3.11 can swallow a cancellation that arrives as the
    awaited thing finishes: a cancelled loop then goes on waiting (ruff bans it here)."""
    async with asyncio.timeout(timeout_s):
        return await awaitable
