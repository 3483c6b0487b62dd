"""Redis store (redis-py asyncio): state survives restarts and is shared by server processes.

Keys live under ``tc:``. The consultation and presence compare-and-set, the capped invite
append and lock release are Lua scripts, so they are atomic however many processes share
the database. Open consultations are a set (the index rounds read); ended ones leave it.

When Redis cannot be reached every call raises :class:`rooms.errors.StoreUnavailable` (clients
get ``unavailable``); nothing is cached, so work resumes as soon as Redis answers again.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rooms.errors import StoreUnavailable
from rooms.models import ClinicianPresence, Consultation, Invite
from rooms.store import RECENT_DURATIONS

logger = logging.getLogger(__name__)

_PREFIX = "tc:"
_OPEN = _PREFIX + "open"
_PRESENCE = _PREFIX + "presence"
_SEEN = _PREFIX + "seen"
# A burst (hundreds of outlets reconnecting) waits for a pooled connection instead of failing.
_MAX_CONNECTIONS = 32
_POOL_WAIT_S = 10.0
# An unreachable Redis fails a request within seconds rather than hanging it.
_CONNECT_TIMEOUT_S = 2.0
_COMMAND_TIMEOUT_S = 5.0
_RETRIES = 2
# Invites stay readable for a day after they expire, so a late guest hears "expired", not "unknown".
_INVITE_AFTERLIFE_S = 86400

# KEYS: consultation key, open set. ARGV: expected version, new JSON, "1" if open, id.
_PUT_CONSULTATION = """
local current = redis.call('GET', KEYS[1])
local expected = tonumber(ARGV[1])
if current then
  if cjson.decode(current)['version'] ~= expected then return 0 end
elseif expected ~= 0 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] == '1' then
  redis.call('SADD', KEYS[2], ARGV[4])
else
  redis.call('SREM', KEYS[2], ARGV[4])
end
return 1
"""

# KEYS: presence hash. ARGV: clinician id, expected version, new JSON.
_PUT_PRESENCE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
local version = 0
if current then version = cjson.decode(current)['version'] or 0 end
if version ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""

# KEYS: invite key, the consultation's outstanding invites (sorted by expiry).
# ARGV: JSON, key TTL, code, expires at, now, max outstanding.
_PUT_INVITE = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[6]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return 1
"""

_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_TAKE_LOCK = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""



P = ParamSpec("P")
R = TypeVar("R")


def _guarded(
    method: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Turn "Redis unreachable" (refused, reset, timed out, still loading) into a domain error."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            logger.debug("redis unreachable in %s: %s", method.__name__, exc)
            raise StoreUnavailable() from exc

    return call


def _consultation_key(consultation_id: str) -> str:
    return f"{_PREFIX}c:{consultation_id}"


def _invite_key(code: str) -> str:
    return f"{_PREFIX}invite:{code}"


def _outstanding_key(consultation_id: str) -> str:
    return f"{_PREFIX}invites:{consultation_id}"


class RedisStore:
    """The :class:`rooms.store.Store` on one Redis database."""

    backend = "redis"

    def __init__(self, url: str) -> None:
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=_MAX_CONNECTIONS,
            timeout=_POOL_WAIT_S,
            decode_responses=True,
            socket_connect_timeout=_CONNECT_TIMEOUT_S,
            socket_timeout=_COMMAND_TIMEOUT_S,
            # A pooled connection from before a Redis restart fails once: retry on a new one.
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), _RETRIES),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        self._redis: redis.Redis = redis.Redis.from_pool(pool)
        self._put_consultation = self._redis.register_script(_PUT_CONSULTATION)
        self._put_presence = self._redis.register_script(_PUT_PRESENCE)
        self._put_invite = self._redis.register_script(_PUT_INVITE)
        self._take_lock = self._redis.register_script(_TAKE_LOCK)
        self._release_lock = self._redis.register_script(_RELEASE_LOCK)

    async def close(self) -> None:
        await self._redis.aclose()

    @_guarded
    async def put_consultation(
        self, consultation: Consultation, expected_version: int
    ) -> Consultation | None:
        written = consultation.copy()
        written.version = expected_version + 1
        done = await self._put_consultation(
            keys=[_consultation_key(written.id), _OPEN],
            args=[
                expected_version,
                json.dumps(written.to_dict()),
                "1" if written.is_open else "0",
                written.id,
            ],
        )
        return written if done == 1 else None

    @_guarded
    async def get_consultation(self, consultation_id: str) -> Consultation | None:
        raw = await self._redis.get(_consultation_key(consultation_id))
        return Consultation.from_dict(json.loads(raw)) if raw else None

    @_guarded
    async def open_consultations(self) -> list[Consultation]:
        ids = sorted(str(i) for i in await self._redis.smembers(_OPEN))
        if not ids:
            return []
        raws = await self._redis.mget([_consultation_key(i) for i in ids])
        found = (Consultation.from_dict(json.loads(raw)) for raw in raws if raw)
        return [c for c in found if c.is_open]

    @_guarded
    async def put_presence(
        self, presence: ClinicianPresence, expected_version: int
    ) -> ClinicianPresence | None:
        written = ClinicianPresence.from_dict(
            {**presence.to_dict(), "version": expected_version + 1}
        )
        done = await self._put_presence(
            keys=[_PRESENCE],
            args=[presence.clinician_id, expected_version, json.dumps(written.to_dict())],
        )
        return written if done == 1 else None

    @_guarded
    async def get_presence(self, clinician_id: str) -> ClinicianPresence | None:
        raw = await self._redis.hget(_PRESENCE, clinician_id)
        return ClinicianPresence.from_dict(json.loads(raw)) if raw else None

    @_guarded
    async def all_presence(self) -> list[ClinicianPresence]:
        raws = await self._redis.hvals(_PRESENCE)
        return [ClinicianPresence.from_dict(json.loads(raw)) for raw in raws]

    @_guarded
    async def mark_seen(self, subjects: Iterable[str], at: float) -> None:
        items: list[str | float] = []
        for subject in subjects:
            items += [subject, float(at)]
        if items:
            await self._redis.hset(_SEEN, items=items)

    @_guarded
    async def seen_at(self, subjects: Iterable[str]) -> dict[str, float]:
        wanted = list(dict.fromkeys(subjects))
        if not wanted:
            return {}
        values = await self._redis.hmget(_SEEN, wanted)
        return {s: float(v) for s, v in zip(wanted, values, strict=True) if v is not None}

    @_guarded
    async def put_invite(self, invite: Invite, max_outstanding: int) -> bool:
        ttl = max(1, int(invite.expires_at - invite.created_at) + _INVITE_AFTERLIFE_S)
        done = await self._put_invite(
            keys=[_invite_key(invite.code), _outstanding_key(invite.consultation_id)],
            args=[
                json.dumps(invite.to_dict()),
                ttl,
                invite.code,
                invite.expires_at,
                invite.created_at,
                max_outstanding,
            ],
        )
        return bool(done)

    @_guarded
    async def get_invite(self, code: str) -> Invite | None:
        key = _invite_key(code)
        raw, redeemed_by = await self._redis.mget([key, key + ":redeemed"])
        if not raw:
            return None
        return Invite.from_dict({**json.loads(raw), "redeemed_by": redeemed_by})

    @_guarded
    async def redeem_invite(self, code: str, guest_id: str) -> Invite | None:
        key = _invite_key(code)
        ttl = await self._redis.ttl(key)
        if ttl <= 0:
            return None
        if not await self._redis.set(key + ":redeemed", guest_id, nx=True, ex=ttl):
            return None
        redeemed = await self.get_invite(code)
        if redeemed is not None:
            await self._redis.zrem(_outstanding_key(redeemed.consultation_id), code)
        return redeemed

    @_guarded
    async def add_duration(self, service: str, seconds: float) -> None:
        key = f"{_PREFIX}durations:{service}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, float(seconds))
            pipe.ltrim(key, 0, RECENT_DURATIONS - 1)
            await pipe.execute()

    @_guarded
    async def recent_durations(self, service: str) -> list[float]:
        return [float(v) for v in await self._redis.lrange(f"{_PREFIX}durations:{service}", 0, -1)]

    @_guarded
    async def try_lock(self, name: str, owner: str, ttl_s: float) -> bool:
        taken = await self._take_lock(
            keys=[f"{_PREFIX}lock:{name}"], args=[owner, max(1, int(ttl_s * 1000))]
        )
        return bool(taken)

    @_guarded
    async def release_lock(self, name: str, owner: str) -> None:
        await self._release_lock(keys=[f"{_PREFIX}lock:{name}"], args=[owner])
