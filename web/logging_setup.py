"""One structured line per event: ``time level logger message key=value ...``."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: str) -> None:
    """Configure the root logger once for the server process."""
    logging.basicConfig(level=level.upper(), format=FORMAT)
    # aiortc/aioice log every packet at DEBUG and every ICE check at INFO.
    for noisy in ("aioice", "aiortc", "engineio", "socketio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
