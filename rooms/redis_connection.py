"""Redis clients for every part that talks to Redis: one server, or a primary found by Sentinel.

``redis://``, ``rediss://`` and ``unix://`` URLs name one server. A
``redis+sentinel://[user:password@]host1:port1,host2:port2/db/service`` URL (python-socketio's
syntax, parsed by its own function so both read it alike) names the sentinels that know which
server is the primary of ``service`` now. Every new connection asks them, so after a failover
connections go to the promoted replica; one still open to a demoted primary fails (``READONLY``)
and is made again. The URL's user and password are the Redis servers'; the sentinels' own
credentials and TLS are :class:`RedisOptions`.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as redis
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from socketio.redis_manager import parse_redis_sentinel_url

SENTINEL_SCHEME = "redis+sentinel://"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", SENTINEL_SCHEME)
# Writes that must survive a failover wait this long at most for a replica's acknowledgement.
DEFAULT_WAIT_TIMEOUT_S = 1.0
# A machine that dies without closing its connections (power, network) leaves idle ones (the
# pub/sub listeners) open: TCP keepalive finds it out in about 11 s instead of Linux's 2 hours.
_KEEPALIVE: dict[int, int] = (
    {socket.TCP_KEEPIDLE: 5, socket.TCP_KEEPINTVL: 2, socket.TCP_KEEPCNT: 3}
    if hasattr(socket, "TCP_KEEPIDLE")
    else {}
)


@dataclass(frozen=True)
class RedisOptions:
    """What a Redis URL cannot say: the sentinels' credentials, TLS, and replica waits.

    ``tls`` applies to a Sentinel URL (sentinels and the servers they name); a single server
    says TLS with ``rediss://``. ``tls_ca_file`` verifies either against a private CA.
    Writes that must not be lost wait for ``wait_replicas`` replicas (Sentinel URLs only: a
    single server has none), at most ``wait_timeout_s``.
    """

    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca_file: str | None = None
    wait_replicas: int = 1
    wait_timeout_s: float = DEFAULT_WAIT_TIMEOUT_S


@dataclass(frozen=True)
class SentinelTarget:
    """A parsed Sentinel URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None
    password: str | None = field(repr=False)


def brief(exc: BaseException) -> str:
    """An exception for a log line: redis-py's "no master found" names every sentinel client
    with all its settings, a screenful per line."""
    text = str(exc)
    return f"{type(exc).__name__}: {text[:120]}{'...' if len(text) > 120 else ''}"


def refused_for_replicas(exc: BaseException) -> bool:
    """Whether a primary with ``min-replicas-to-write`` refused a write (before making it) for
    lack of replicas: to its callers Redis is unavailable, as in an outage."""
    return isinstance(exc, ResponseError) and "NOREPLICAS" in str(exc)


def is_redis_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(REDIS_SCHEMES)


def is_sentinel_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(SENTINEL_SCHEME)


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Read a Sentinel URL as python-socketio does; ``ValueError`` if it names no sentinel or
    no service (python-socketio would fall back to its channel name: a silent mismatch)."""
    try:
        sentinels, service, kwargs = parse_redis_sentinel_url(url)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"bad Sentinel URL: {exc}") from None
    if not sentinels:
        raise ValueError("a Sentinel URL names at least one sentinel host:port")
    if not service:
        raise ValueError("a Sentinel URL ends with /<db>/<service>, e.g. /0/mymaster")
    return SentinelTarget(
        tuple((str(host), int(port)) for host, port in sentinels),
        str(service),
        int(kwargs.get("db", 0)),
        kwargs.get("username"),
        kwargs.get("password"),
    )


def wait_replicas(url: str | None, options: RedisOptions) -> int:
    """How many replicas a must-not-be-lost write waits for on this URL (0: none)."""
    return max(0, options.wait_replicas) if is_sentinel_url(url) else 0


def _tls_kwargs(url: str, options: RedisOptions) -> dict[str, Any]:
    """TLS arguments: a Sentinel URL with ``tls`` (sentinels and servers), or ``rediss://``
    (which turns TLS on by itself); the CA file only where TLS is on."""
    kwargs: dict[str, Any] = {}
    if is_sentinel_url(url) and options.tls:
        kwargs["ssl"] = True
        kwargs["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    tls = bool(kwargs) or url.startswith("rediss://")
    if tls and options.tls_ca_file:
        kwargs["ssl_ca_certs"] = options.tls_ca_file
    return kwargs


def _socket_kwargs(
    connect_timeout_s: float, command_timeout_s: float | None = None
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": connect_timeout_s,
        "socket_keepalive": True,
        "socket_keepalive_options": _KEEPALIVE,
    }
    if command_timeout_s is not None:
        kwargs["socket_timeout"] = command_timeout_s
    return kwargs


def _sentinel_kwargs(
    url: str, options: RedisOptions, socket_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """How this process connects to the sentinels themselves."""
    kwargs = dict(socket_kwargs)
    if options.sentinel_username:
        kwargs["username"] = options.sentinel_username
    if options.sentinel_password:
        kwargs["password"] = options.sentinel_password
    return {**kwargs, **_tls_kwargs(url, options)}


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """The primary's connections, found through Sentinel; a caller waits for a free connection
    when all are in use (as with one server) instead of failing."""


def connect(
    url: str,
    options: RedisOptions,
    *,
    connect_timeout_s: float,
    command_timeout_s: float,
    max_connections: int | None = None,
    pool_wait_s: float | None = None,
    retry: Retry | None = None,
) -> redis.Redis:
    """A client with decoded responses on ``url``'s primary. ``max_connections`` with
    ``pool_wait_s`` makes its pool blocking; ``retry`` retries a command that lost its
    connection on a new one (after a failover, on the new primary)."""
    socket_kwargs = _socket_kwargs(connect_timeout_s, command_timeout_s)
    common: dict[str, Any] = {"decode_responses": True, **socket_kwargs}
    if retry is not None:
        common["retry"] = retry
        common["retry_on_error"] = [RedisConnectionError, RedisTimeoutError]
    blocking = max_connections is not None and pool_wait_s is not None
    if not is_sentinel_url(url):
        common.update(_tls_kwargs(url, options))
        if blocking:
            pool = BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=pool_wait_s, **common
            )
            return redis.Redis.from_pool(pool)
        return redis.Redis.from_url(url, **common)
    target = parse_sentinel_url(url)
    sentinel = Sentinel(
        list(target.sentinels),
        sentinel_kwargs=_sentinel_kwargs(url, options, socket_kwargs),
        db=target.db,
        username=target.username,
        password=target.password,
        **common,
        **_tls_kwargs(url, options),
    )
    if blocking:
        client: redis.Redis = sentinel.master_for(
            target.service,
            connection_pool_class=BlockingSentinelPool,
            max_connections=max_connections,
            timeout=pool_wait_s,
        )
    else:
        client = sentinel.master_for(target.service)
    return client


def socketio_redis_options(
    url: str, options: RedisOptions, connect_timeout_s: float
) -> dict[str, Any]:
    """``redis_options`` for python-socketio's ``AsyncRedisManager`` on ``url``: the same
    sentinel credentials and TLS as this process's own clients. No command timeout: its
    listener waits on an idle subscription (keepalive notices a dead server)."""
    socket_kwargs = _socket_kwargs(connect_timeout_s)
    redis_options = {**socket_kwargs, **_tls_kwargs(url, options)}
    if is_sentinel_url(url):
        redis_options["sentinel_kwargs"] = _sentinel_kwargs(url, options, socket_kwargs)
    return redis_options
