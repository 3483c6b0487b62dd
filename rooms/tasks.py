"""Stopping a background task: the one way every part does it."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (nothing when ``None``) and wait until it has finished; its outcome is
    dropped. A cancellation of the caller itself still propagates."""
    if task is None:
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
