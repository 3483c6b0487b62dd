"""Log lines caused by clients, at most a few per interval per kind, so a client cannot flood the
log; what was held back is counted and reported with the next line that goes out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class LogThrottle:
    """Passes at most ``per_interval`` lines of each kind every ``interval_s`` seconds."""

    def __init__(
        self,
        logger: logging.Logger,
        per_interval: int = 20,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._per_interval = per_interval
        self._interval_s = interval_s
        self._clock = clock
        self._windows: dict[str, tuple[float, int, int]] = {}

    def log(self, level: int, kind: str, message: str, *args: object) -> None:
        """Log ``message % args`` unless this ``kind`` already used up its lines."""
        if not self._logger.isEnabledFor(level):
            return
        now = self._clock()
        started, sent, held = self._windows.get(kind, (now, 0, 0))
        if now - started >= self._interval_s:
            started, sent = now, 0
        if sent >= self._per_interval:
            self._windows[kind] = (started, sent, held + 1)
            return
        if held:
            message += " (%d similar lines held back)"
            args = (*args, held)
        self._windows[kind] = (started, sent + 1, 0)
        self._logger.log(level, message, *args)
