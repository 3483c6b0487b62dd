"""Closing client connections the moment the server starts shutting down.

aiohttp stops accepting, runs ``on_shutdown``, then waits up to its shutdown timeout for open
requests; a Socket.IO websocket is an open request until the client goes, so without this the
server would sit out the whole timeout. Closing at the Engine.IO level ("transport close")
lets browser clients reconnect by themselves to the restarted server.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from web.keys import sio_key

logger = logging.getLogger(__name__)

CLOSE_CLIENTS_TIMEOUT_S = 1.0


async def close_client_connections(app: web.Application) -> None:
    """Close every Socket.IO connection (bounded in time) and stop Socket.IO's background tasks."""
    sio = app[sio_key]
    # Close by sid: engine.io's close-all fails on an empty set, and clients may leave meanwhile.
    sids = list(sio.eio.sockets)
    clients = len(sids)
    if sids:
        closing = asyncio.gather(*(sio.eio.disconnect(sid) for sid in sids))
        try:
            async with asyncio.timeout(CLOSE_CLIENTS_TIMEOUT_S):
                await closing
        except TimeoutError:
            logger.warning("shutdown: some client connections did not close in time")
    await sio.shutdown()
    logger.info("shutdown: closed client connections count=%d", clients)
