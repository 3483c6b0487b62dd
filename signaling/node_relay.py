"""Request/reply between nodes over Redis pub/sub, with a timeout.

Each node listens on its own channel. :meth:`NodeRelay.request` publishes a request to another
node and waits for that node's reply on the caller's channel; no listener (the node is gone) or no
reply within the timeout raises :class:`rooms.errors.NodeUnavailable`. Requests that share an
ordering key (one participant's ``rtc.*`` events) run one after another on the receiving node, in
the order they were published. The listener reconnects with capped backoff after a Redis restart
or a Sentinel failover (its new connection goes to the promoted primary).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from rooms.errors import NodeUnavailable
from rooms.redis_connection import RedisOptions, brief, connect
from rooms.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

Body = dict[str, Any]
RelayHandler = Callable[[Body], Awaitable[Body]]

_CHANNEL_PREFIX = "tc:relay:"
_BACKOFF_MAX_S = 2.0
_POLL_S = 1.0


def _channel(node_id: str) -> str:
    return _CHANNEL_PREFIX + node_id


class NodeRelay:
    """This node's end of the relay: sends requests, answers the ones addressed to it."""

    def __init__(
        self,
        url: str,
        node_id: str,
        timeout_s: float,
        options: RedisOptions | None = None,
        max_in_flight: int = 256,
    ) -> None:
        self.node_id = node_id
        self._timeout_s = timeout_s
        self._redis: redis.Redis = connect(
            url, options or RedisOptions(), connect_timeout_s=2.0, command_timeout_s=3.0
        )
        self._handlers: dict[str, RelayHandler] = {}
        self._pending: dict[str, asyncio.Future[Body]] = {}
        self._order: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    def serve(self, kind: str, handler: RelayHandler) -> None:
        """Answer requests of ``kind`` with ``handler`` (its result is the reply body)."""
        self._handlers[kind] = handler

    async def start(self) -> None:
        """Listen on this node's channel; returns once subscribed (or after the timeout)."""
        self._listener = asyncio.create_task(self._listen(), name=f"relay-{self.node_id}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout_s):
                await self._subscribed.wait()

    async def close(self) -> None:
        await cancel_and_wait(self._listener)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for future in self._pending.values():
            future.cancel()
        await self._redis.aclose()

    async def request(
        self,
        node_id: str,
        kind: str,
        body: Body,
        order_key: str = "",
        timeout_s: float | None = None,
    ) -> Body:
        """Send ``body`` to ``node_id``'s ``kind`` handler and return its reply."""
        request_id = uuid.uuid4().hex
        future: asyncio.Future[Body] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message = {
            "id": request_id,
            "from": self.node_id,
            "kind": kind,
            "order": order_key,
            "body": body,
        }
        try:
            try:
                receivers = await self._redis.publish(_channel(node_id), json.dumps(message))
            except (RedisError, OSError) as exc:
                raise NodeUnavailable() from exc
            if not receivers:
                raise NodeUnavailable()
            try:
                async with asyncio.timeout(timeout_s or self._timeout_s):
                    return await future
            except TimeoutError:
                logger.warning("relay: no reply node=%s kind=%s", node_id, kind)
                raise NodeUnavailable() from None
        finally:
            self._pending.pop(request_id, None)

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(_channel(self.node_id))
                self._subscribed.set()
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(timeout=_POLL_S)
                    if message is not None and message.get("type") == "message":
                        self._receive(str(message["data"]))
            except (RedisError, OSError) as exc:
                logger.warning("relay: listener lost redis node=%s: %s", self.node_id, brief(exc))
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(_BACKOFF_MAX_S, backoff * 2)

    def _receive(self, raw: str) -> None:
        try:
            message = json.loads(raw)
            request_id = str(message["id"])
        except (ValueError, KeyError, TypeError):
            logger.warning("relay: unreadable message node=%s", self.node_id)
            return
        if "reply" in message:
            future = self._pending.get(request_id)
            if future is not None and not future.done():
                future.set_result(dict(message["reply"]))
            return
        task = asyncio.create_task(self._answer(message), name=f"relay-answer-{request_id[:8]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, message: dict[str, Any]) -> None:
        handler = self._handlers.get(str(message.get("kind")))
        order_key = str(message.get("order") or message["id"])
        lock, users = self._order.setdefault(order_key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with self._slots, lock:
                if handler is None:
                    reply: Body = {"error": {"code": "unknown_relay", "message": "not served"}}
                else:
                    reply = await handler(dict(message.get("body") or {}))
        except Exception:
            logger.exception("relay: handler failed kind=%s", message.get("kind"))
            reply = {"error": {"code": "internal", "message": "the request failed"}}
        finally:
            users[0] -= 1
            if not users[0]:
                del self._order[order_key]
        answer = {"id": message["id"], "reply": reply}
        try:
            await self._redis.publish(_channel(str(message["from"])), json.dumps(answer))
        except (RedisError, OSError):
            logger.warning("relay: could not reply to node=%s", message.get("from"))
