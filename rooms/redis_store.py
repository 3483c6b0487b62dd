"""Redis store (redis-py asyncio): state survives restarts and is shared by server processes.

Keys live under ``tc:``. The consultation compare-and-set and lock release are Lua scripts, so
they are atomic however many processes share the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis.asyncio as redis

from rooms.models import AuditEvent, ClinicianPresence, Consultation, Invite
from rooms.store import RECENT_DURATIONS, check_recording_meta

_PREFIX = "tc:"
_OPEN = _PREFIX + "open"
_PRESENCE = _PREFIX + "presence"
_SEEN = _PREFIX + "seen"
_RECORDINGS = _PREFIX + "recordings"
# A burst (hundreds of outlets reconnecting) waits for a pooled connection instead of failing.
_MAX_CONNECTIONS = 32
_POOL_WAIT_S = 10.0
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


def _consultation_key(consultation_id: str) -> str:
    return f"{_PREFIX}c:{consultation_id}"


def _invite_key(code: str) -> str:
    return f"{_PREFIX}invite:{code}"


class RedisStore:
    """The :class:`rooms.store.Store` on one Redis database."""

    backend = "redis"

    def __init__(self, url: str) -> None:
        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=_MAX_CONNECTIONS, timeout=_POOL_WAIT_S, decode_responses=True
        )
        self._redis: redis.Redis = redis.Redis.from_pool(pool)
        self._put_consultation = self._redis.register_script(_PUT_CONSULTATION)
        self._take_lock = self._redis.register_script(_TAKE_LOCK)
        self._release_lock = self._redis.register_script(_RELEASE_LOCK)

    async def close(self) -> None:
        await self._redis.aclose()

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

    async def get_consultation(self, consultation_id: str) -> Consultation | None:
        raw = await self._redis.get(_consultation_key(consultation_id))
        return Consultation.from_dict(json.loads(raw)) if raw else None

    async def open_consultations(self) -> list[Consultation]:
        ids = sorted(str(i) for i in await self._redis.smembers(_OPEN))
        if not ids:
            return []
        raws = await self._redis.mget([_consultation_key(i) for i in ids])
        found = (Consultation.from_dict(json.loads(raw)) for raw in raws if raw)
        return [c for c in found if c.is_open]

    async def put_presence(self, presence: ClinicianPresence) -> None:
        await self._redis.hset(_PRESENCE, presence.clinician_id, json.dumps(presence.to_dict()))

    async def get_presence(self, clinician_id: str) -> ClinicianPresence | None:
        raw = await self._redis.hget(_PRESENCE, clinician_id)
        return ClinicianPresence.from_dict(json.loads(raw)) if raw else None

    async def all_presence(self) -> list[ClinicianPresence]:
        raws = await self._redis.hvals(_PRESENCE)
        return [ClinicianPresence.from_dict(json.loads(raw)) for raw in raws]

    async def mark_seen(self, subjects: Iterable[str], at: float) -> None:
        items: list[str | float] = []
        for subject in subjects:
            items += [subject, float(at)]
        if items:
            await self._redis.hset(_SEEN, items=items)

    async def seen_at(self, subjects: Iterable[str]) -> dict[str, float]:
        wanted = list(dict.fromkeys(subjects))
        if not wanted:
            return {}
        values = await self._redis.hmget(_SEEN, wanted)
        return {s: float(v) for s, v in zip(wanted, values, strict=True) if v is not None}

    async def put_invite(self, invite: Invite) -> None:
        ttl = max(1, int(invite.expires_at - invite.created_at) + _INVITE_AFTERLIFE_S)
        await self._redis.set(_invite_key(invite.code), json.dumps(invite.to_dict()), ex=ttl)

    async def get_invite(self, code: str) -> Invite | None:
        key = _invite_key(code)
        raw, redeemed_by = await self._redis.mget([key, key + ":redeemed"])
        if not raw:
            return None
        return Invite.from_dict({**json.loads(raw), "redeemed_by": redeemed_by})

    async def redeem_invite(self, code: str, guest_id: str) -> Invite | None:
        key = _invite_key(code)
        ttl = await self._redis.ttl(key)
        if ttl <= 0:
            return None
        if not await self._redis.set(key + ":redeemed", guest_id, nx=True, ex=ttl):
            return None
        return await self.get_invite(code)

    async def append_audit(self, event: AuditEvent) -> None:
        await self._redis.rpush(
            f"{_PREFIX}audit:{event.consultation_id}", json.dumps(event.to_dict())
        )

    async def audit_for(self, consultation_id: str) -> list[AuditEvent]:
        raws = await self._redis.lrange(f"{_PREFIX}audit:{consultation_id}", 0, -1)
        return [AuditEvent.from_dict(json.loads(raw)) for raw in raws]

    async def add_duration(self, service: str, seconds: float) -> None:
        key = f"{_PREFIX}durations:{service}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, float(seconds))
            pipe.ltrim(key, 0, RECENT_DURATIONS - 1)
            await pipe.execute()

    async def recent_durations(self, service: str) -> list[float]:
        return [float(v) for v in await self._redis.lrange(f"{_PREFIX}durations:{service}", 0, -1)]

    async def try_lock(self, name: str, owner: str, ttl_s: float) -> bool:
        taken = await self._take_lock(
            keys=[f"{_PREFIX}lock:{name}"], args=[owner, max(1, int(ttl_s * 1000))]
        )
        return bool(taken)

    async def release_lock(self, name: str, owner: str) -> None:
        await self._release_lock(keys=[f"{_PREFIX}lock:{name}"], args=[owner])

    async def save_recording(self, meta: dict[str, Any]) -> None:
        recording_id, consultation_id = check_recording_meta(meta)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(_RECORDINGS, recording_id, json.dumps(meta))
            pipe.sadd(f"{_RECORDINGS}:{consultation_id}", recording_id)
            await pipe.execute()

    async def get_recording(self, recording_id: str) -> dict[str, Any] | None:
        raw = await self._redis.hget(_RECORDINGS, recording_id)
        return dict(json.loads(raw)) if raw else None

    async def recordings_for(self, consultation_id: str) -> list[dict[str, Any]]:
        ids = sorted(str(i) for i in await self._redis.smembers(f"{_RECORDINGS}:{consultation_id}"))
        if not ids:
            return []
        raws = await self._redis.hmget(_RECORDINGS, ids)
        return [dict(json.loads(raw)) for raw in raws if raw]

    async def all_recordings(self) -> list[dict[str, Any]]:
        return [dict(json.loads(raw)) for raw in await self._redis.hvals(_RECORDINGS)]

    async def delete_recording(self, recording_id: str) -> None:
        meta = await self.get_recording(recording_id)
        if meta is None:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(_RECORDINGS, recording_id)
            pipe.srem(f"{_RECORDINGS}:{meta['consultation_id']}", recording_id)
            await pipe.execute()
