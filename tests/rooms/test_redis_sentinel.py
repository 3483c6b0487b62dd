"""The store through Redis Sentinel: URLs, replica waits, and a failover on real processes."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
from redis.asyncio.sentinel import SentinelManagedSSLConnection

from benchmarks._sentinel import Secured, SentinelSetup
from rooms.errors import StoreUnavailable
from rooms.nodes import NodeDirectory
from rooms.redis_connection import RedisOptions, connect, parse_sentinel_url, wait_replicas
from rooms.store import create_store
from signaling.server import create_redis_manager
from tests.cluster.test_placement import record
from tests.conftest import start_redis
from tests.coturn import write_self_signed
from tests.rooms.test_store_contract import consultation
from web.settings import Settings, SettingsError, load_settings

URL = "redis+sentinel://user:pw@10.0.0.1:26379,10.0.0.2:26380/2/clinic"


def test_a_sentinel_url_is_read_as_python_socketio_reads_it() -> None:
    target = parse_sentinel_url(URL)
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert (target.service, target.db, target.username, target.password) == (
        "clinic",
        2,
        "user",
        "pw",
    )
    assert "pw" not in repr(target)
    with pytest.raises(ValueError, match="service"):
        parse_sentinel_url("redis+sentinel://10.0.0.1:26379/0")
    with pytest.raises(ValueError):
        parse_sentinel_url("redis+sentinel://10.0.0.1/0/clinic")  # no port


def test_only_a_sentinel_url_waits_for_replicas() -> None:
    options = RedisOptions(wait_replicas=1)
    assert wait_replicas(URL, options) == 1
    assert wait_replicas("redis://127.0.0.1:6379/0", options) == 0
    assert wait_replicas(URL, RedisOptions(wait_replicas=0)) == 0


def test_sentinel_settings_come_from_the_environment_and_bad_ones_are_refused() -> None:
    settings = load_settings(
        {"store_url": URL},
        environ={
            "TELECONSULT_REDIS_SENTINEL_PASSWORD": "sentinel-secret",
            "TELECONSULT_REDIS_TLS": "true",
            "TELECONSULT_REDIS_WAIT_TIMEOUT_S": "0.25",
        },
    )
    options = settings.redis_options()
    assert options.sentinel_password == "sentinel-secret" and options.tls is True
    assert options.wait_timeout_s == 0.25 and options.wait_replicas == 1
    assert settings.store_backend == "redis"
    assert "sentinel-secret" not in repr(settings) and "sentinel-secret" not in repr(options)
    for bad in (
        Settings(store_url="redis+sentinel://10.0.0.1:26379/0"),
        Settings(store_url=URL, redis_wait_timeout_s=0),
        Settings(store_url=URL, redis_tls_ca_file=settings.recordings_dir / "missing.pem"),
    ):
        with pytest.raises(SettingsError):
            bad.validated()


def sentinel_pool_facts(client: Any) -> dict[str, Any]:
    """What a Sentinel-backed client connects with: to the primary, and to the sentinels."""
    pool = client.connection_pool
    to_sentinel = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
    return {
        "service": pool.service_name,
        "db": pool.connection_kwargs["db"],
        "password": pool.connection_kwargs["password"],
        "tls": issubclass(pool.connection_class, SentinelManagedSSLConnection),
        "ca": pool.connection_kwargs.get("ssl_ca_certs"),
        "sentinel_password": to_sentinel.get("password"),
        "sentinel_ca": to_sentinel.get("ssl_ca_certs"),
    }


async def test_the_store_and_the_socketio_manager_connect_alike_through_sentinel() -> None:
    options = RedisOptions(sentinel_password="s-pw", tls=True, tls_ca_file="/etc/ca.pem")
    expected = {
        "service": "clinic",
        "db": 2,
        "password": "pw",
        "tls": True,
        "ca": "/etc/ca.pem",
        "sentinel_password": "s-pw",
        "sentinel_ca": "/etc/ca.pem",
    }
    client = connect(URL, options, connect_timeout_s=1.0, command_timeout_s=1.0)
    manager = create_redis_manager(URL, options)
    manager._redis_connect()  # builds the clients; connects only when used
    try:
        assert sentinel_pool_facts(client) == expected
        assert sentinel_pool_facts(manager.redis) == expected
    finally:
        await client.aclose()
        await manager.redis.aclose()


async def test_durable_writes_wait_for_a_replica_and_survive_a_failover(
    sentinel_setup: SentinelSetup, caplog: pytest.LogCaptureFixture
) -> None:
    store = create_store(sentinel_setup.url, redis_options=RedisOptions(wait_timeout_s=0.5))
    (replica,) = [s for s in sentinel_setup.servers if s.role == "replica"]
    try:
        assert await store.put_consultation(consultation("c-1"), 0, durable=True) is not None

        # A replica that does not answer: a durable write waits out the timeout (and says so),
        # an ordinary one does not wait.
        replica.process.send_signal(signal.SIGSTOP)
        try:
            began = time.monotonic()
            assert await store.put_consultation(consultation("c-2"), 0) is not None
            plain_s = time.monotonic() - began
            with caplog.at_level(logging.WARNING, logger="rooms.redis_store"):
                began = time.monotonic()
                assert await store.put_consultation(consultation("c-3"), 0, durable=True)
                durable_s = time.monotonic() - began
        finally:
            replica.process.send_signal(signal.SIGCONT)
        assert plain_s < 0.3 and durable_s >= 0.45, (plain_s, durable_s)
        assert "not confirmed by 1 replica(s) within 500 ms consultation=c-3" in caplog.text

        written = await store.put_consultation(consultation("c-4"), 0, durable=True)
        assert written is not None
        old = await sentinel_setup.kill_primary()
        with pytest.raises(StoreUnavailable):
            await store.get_consultation("c-4")
        promoted = await sentinel_setup.wait_promotion(old.port)
        assert promoted == replica.port
        for _ in range(50):  # the first call after the promotion may still meet the old pool
            try:
                found = await store.get_consultation("c-4")
                break
            except StoreUnavailable:
                await asyncio.sleep(0.1)
        assert found is not None and found.version == written.version
        for cid in ("c-1", "c-3"):
            assert await store.get_consultation(cid) is not None, cid
        assert await store.put_consultation(found, found.version, durable=True) is not None
    finally:
        await store.close()


async def test_passwords_and_tls_on_every_port_through_a_failover(tmp_path: Path) -> None:
    cert, key = write_self_signed(tmp_path)
    setup = SentinelSetup(
        tmp_path / "sentinel", secured=Secured("server-pw", "sentinel-pw", cert, key)
    )
    good = RedisOptions(sentinel_password="sentinel-pw", tls=True, tls_ca_file=str(cert))
    try:
        await setup.start()
    except BaseException:
        setup.stop()
        raise
    store = create_store(setup.url, redis_options=good)
    manager = create_redis_manager(setup.url, good)
    refused = [
        create_store(setup.url, redis_options=RedisOptions(tls=True, tls_ca_file=str(cert))),
        create_store(setup.url, redis_options=RedisOptions(sentinel_password="sentinel-pw")),
    ]
    try:
        assert await store.put_consultation(consultation("c-1"), 0, durable=True) is not None
        manager._redis_connect()
        assert await manager.redis.publish(manager.channel, "{}") == 0  # nobody subscribed
        for store_without in refused:  # no sentinel password; no TLS
            with pytest.raises(StoreUnavailable):
                await store_without.get_consultation("c-1")

        old = await setup.kill_primary()
        await setup.wait_promotion(old.port)
        for _ in range(50):
            try:
                found = await store.get_consultation("c-1")
                break
            except StoreUnavailable:
                await asyncio.sleep(0.1)
        assert found is not None
    finally:
        for each in [store, *refused]:
            await each.close()
        if manager.redis is not None:
            await manager.redis.aclose()
        setup.stop()


async def test_a_primary_that_lost_its_replicas_refuses_writes_as_unavailable(
    tmp_path: Path,
) -> None:
    """``min-replicas-to-write`` (docs/deploy.md): writes are refused before they are made, to
    the store and to the node directory alike (a heartbeat that crashed on it would stop)."""
    server = start_redis(tmp_path)
    admin = redis.Redis(port=server.port)
    store = create_store(server.url)
    directory = NodeDirectory(server.url)
    try:
        await admin.config_set("min-replicas-to-write", 1)
        with pytest.raises(StoreUnavailable):
            await store.put_consultation(consultation("c-1"), 0, durable=True)
        with pytest.raises(StoreUnavailable):
            await directory.heartbeat(record("node-a", 4), 30)
        assert await store.get_consultation("c-1") is None  # reads go on
        await admin.config_set("min-replicas-to-write", 0)
        assert await store.put_consultation(consultation("c-1"), 0, durable=True) is not None
        await directory.heartbeat(record("node-a", 4), 30)
    finally:
        await store.close()
        await directory.close()
        await admin.aclose()
        server.process.terminate()
        server.process.wait(timeout=10)
