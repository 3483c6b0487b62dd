"""The nodes of a cluster on Redis: heartbeats with a TTL, their live load, and media pins.

A node is one server process. It writes its record (media address, capacity, load) every
heartbeat with a TTL, so a node that stops heartbeating disappears from the live set by itself.
Each consultation's media is *pinned* to one node (``tc:pins``: consultation → node, and one set
per node of what it carries); placement is one Lua script, so concurrent accepts on several
processes never overfill a node. The known-node set keeps lost nodes until their consultations
have been moved (see ``signaling.media_moves``).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rooms.errors import ClusterFull, StoreUnavailable
from rooms.redis_connection import RedisOptions, connect, refused_for_replicas

_PREFIX = "tc:"
_NODES = _PREFIX + "nodes"
_PINS = _PREFIX + "pins"
_CONNECT_TIMEOUT_S = 2.0
_COMMAND_TIMEOUT_S = 3.0

# KEYS[1]: pins hash; then for every known node i (1-based): KEYS[2i] its heartbeat, KEYS[2i+1]
# its pin set. ARGV: consultation id, node to move away from ('' for none), the node ids.
# Keeps a pin whose node is live, not draining and not excluded; otherwise pins to the live node
# with the lowest share of its capacity in use (then the lowest CPU, then the id).
# Returns {node or '', previous node or ''}.
_PLACE = """
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
local n = #ARGV - 2
local infos = {}
for i = 1, n do
  local raw = redis.call('GET', KEYS[2 * i])
  if raw then infos[i] = cjson.decode(raw) end
end
for i = 1, n do
  local info = infos[i]
  if ARGV[i + 2] == current and current ~= ARGV[2] and info and not info['draining'] then
    return {current, current}
  end
end
local best, best_load, best_cpu, best_i = nil, nil, nil, nil
for i = 1, n do
  local node, info = ARGV[i + 2], infos[i]
  if node ~= ARGV[2] and info and not info['draining'] then
    local capacity = tonumber(info['capacity'])
    local count = redis.call('SCARD', KEYS[2 * i + 1])
    if count < capacity then
      local load, cpu = count / capacity, tonumber(info['cpu_pct']) or 0
      if best == nil or load < best_load or (load == best_load and (cpu < best_cpu or
          (cpu == best_cpu and node < best))) then
        best, best_load, best_cpu, best_i = node, load, cpu, i
      end
    end
  end
end
if best == nil then return {'', current} end
redis.call('HSET', KEYS[1], ARGV[1], best)
redis.call('SADD', KEYS[2 * best_i + 1], ARGV[1])
for i = 1, n do
  if ARGV[i + 2] == current and current ~= best then
    redis.call('SREM', KEYS[2 * i + 1], ARGV[1])
  end
end
return {best, current}
"""

# KEYS[1]: pins hash, KEYS[2]: the node's pin set. ARGV: the node, its consultation ids.
# Pins each consultation to the node unless it is pinned already; returns how many it pinned.
_RESTORE_PINS = """
local restored = 0
for i = 2, #ARGV do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[1]) == 1 then
    redis.call('SADD', KEYS[2], ARGV[i])
    restored = restored + 1
  end
end
return restored
"""

# KEYS[1]: pins hash, KEYS[2]: the pinned node's set. ARGV: consultation id, that node.
_UNPIN = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""


def _names(values: Iterable[bytes | str]) -> list[str]:
    return sorted(v.decode() if isinstance(v, bytes) else v for v in values)


def _heartbeat_key(node_id: str) -> str:
    return f"{_PREFIX}node:{node_id}"


def _pins_key(node_id: str) -> str:
    return f"{_PREFIX}node:{node_id}:pins"


@dataclass(frozen=True)
class NodeLoad:
    """What a node measures of itself each heartbeat."""

    routers: int = 0
    peers: int = 0
    packets_per_s: float = 0.0
    cpu_pct: float = 0.0


@dataclass(frozen=True)
class NodeRecord:
    """What a node publishes each heartbeat."""

    node_id: str
    media_address: str
    capacity: int
    started_at: float
    load: NodeLoad
    draining: bool = False

    def to_json(self) -> str:
        data = asdict(self)
        data["cpu_pct"] = self.load.cpu_pct  # read by the placement script
        data["heartbeat_at"] = time.time()
        return json.dumps(data, separators=(",", ":"))


@dataclass(frozen=True)
class NodeView:
    """A known node as the directory sees it: its last record (if still live) and its pins."""

    node_id: str
    live: bool
    consultations: int
    record: dict[str, Any] | None

    def to_wire(self) -> dict[str, Any]:
        record = self.record or {}
        return {
            "node_id": self.node_id,
            "live": self.live,
            "draining": bool(record.get("draining", False)),
            "media_address": record.get("media_address"),
            "capacity": record.get("capacity"),
            "consultations": self.consultations,
            "load": record.get("load"),
            "heartbeat_at": record.get("heartbeat_at"),
        }


@dataclass(frozen=True)
class Placement:
    """Where a consultation's media is pinned now, and where it was before (``None``: nowhere)."""

    node_id: str
    previous: str | None

    @property
    def moved(self) -> bool:
        return self.previous is not None and self.previous != self.node_id

    @property
    def new(self) -> bool:
        return self.previous is None


@asynccontextmanager
async def _reachable() -> AsyncIterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable() from exc
    except ResponseError as exc:
        if refused_for_replicas(exc):
            raise StoreUnavailable() from exc
        raise


class NodeDirectory:
    """Node heartbeats and media pins in one Redis database."""

    def __init__(self, url: str, options: RedisOptions | None = None) -> None:
        self._redis: redis.Redis = connect(
            url,
            options or RedisOptions(),
            connect_timeout_s=_CONNECT_TIMEOUT_S,
            command_timeout_s=_COMMAND_TIMEOUT_S,
        )
        self._place = self._redis.register_script(_PLACE)
        self._unpin = self._redis.register_script(_UNPIN)
        self._restore_pins = self._redis.register_script(_RESTORE_PINS)

    async def close(self) -> None:
        await self._redis.aclose()

    async def heartbeat(self, record: NodeRecord, ttl_s: float) -> None:
        """Publish ``record`` for ``ttl_s``; (re-)register the node (after a Redis restart too)."""
        async with _reachable():
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(_heartbeat_key(record.node_id), record.to_json(), px=int(ttl_s * 1000))
            pipe.sadd(_NODES, record.node_id)
            await pipe.execute()

    async def stop_heartbeat(self, node_id: str) -> None:
        """The node leaves the live set now (a clean exit, after its consultations moved)."""
        async with _reachable():
            await self._redis.delete(_heartbeat_key(node_id))
            if not await self._redis.scard(_pins_key(node_id)):
                await self._redis.srem(_NODES, node_id)

    async def nodes(self) -> list[NodeView]:
        """Every known node, live or lost (lost ones until their consultations have moved)."""
        async with _reachable():
            ids = _names(await self._redis.smembers(_NODES))
            if not ids:
                return []
            pipe = self._redis.pipeline(transaction=False)
            for node_id in ids:
                pipe.get(_heartbeat_key(node_id))
                pipe.scard(_pins_key(node_id))
            replies = await pipe.execute()
        views = []
        for index, node_id in enumerate(ids):
            raw, count = replies[2 * index], replies[2 * index + 1]
            record = json.loads(raw) if raw else None
            views.append(NodeView(node_id, record is not None, int(count), record))
        return views

    async def lost_nodes(self) -> list[str]:
        """Known nodes whose heartbeat has expired."""
        return [view.node_id for view in await self.nodes() if not view.live]

    async def place(self, consultation_id: str, away_from: str | None = None) -> Placement:
        """Pin the consultation (keeping a valid pin); raises :class:`ClusterFull`.

        ``away_from`` moves it off that node even if the node is still live (drain).
        """
        async with _reachable():
            ids = _names(await self._redis.smembers(_NODES))
            keys = [_PINS]
            for node_id in ids:
                keys += [_heartbeat_key(node_id), _pins_key(node_id)]
            node, previous = await self._place(
                keys=keys, args=[consultation_id, away_from or "", *ids]
            )
        if not node:
            raise ClusterFull()
        return Placement(str(node), str(previous) or None)

    async def pin_of(self, consultation_id: str) -> str | None:
        async with _reachable():
            node = await self._redis.hget(_PINS, consultation_id)
        return str(node) if node else None

    async def unpin(self, consultation_id: str) -> None:
        """Forget the consultation's pin (it ended)."""
        async with _reachable():
            node = await self._redis.hget(_PINS, consultation_id)
            if node:
                node = str(node)
                await self._unpin(keys=[_PINS, _pins_key(node)], args=[consultation_id, node])

    async def restore_pins(self, node_id: str, consultation_ids: Iterable[str]) -> int:
        """Pin to ``node_id`` the consultations whose media it carries and that have no pin:
        a store that came back empty, or a promoted replica that missed the last writes, has
        lost them. Pins that exist are left alone. Returns how many were restored."""
        ids = sorted(set(consultation_ids))
        if not ids:
            return 0
        async with _reachable():
            restored = await self._restore_pins(
                keys=[_PINS, _pins_key(node_id)], args=[node_id, *ids]
            )
        return int(restored)

    async def pins_of(self, node_id: str) -> list[str]:
        async with _reachable():
            return _names(await self._redis.smembers(_pins_key(node_id)))

    async def forget(self, node_id: str) -> None:
        """Drop a lost node whose consultations have all moved."""
        async with _reachable():
            pipe = self._redis.pipeline(transaction=True)
            pipe.srem(_NODES, node_id)
            pipe.delete(_pins_key(node_id))
            await pipe.execute()
