"""``teleconsult serve --workers N``: N node processes on one machine behind one HTTP port.

Every worker binds the same port with ``SO_REUSEPORT``; the kernel hands each new TCP connection
to one of them. A Socket.IO connection must stay on the process that accepted it, so workers
accept websocket transport only (the pages connect with websocket first). Each worker is a full
node of the cluster (its own node id ``<base>-w<i>``, media port slice and heartbeat); the
consultations' media are pinned across them through Redis like across machines. This process
only supervises: it restarts a worker that died and passes SIGTERM/SIGINT on (each worker
drains), then waits a bounded time.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from dataclasses import replace
from multiprocessing.process import BaseProcess
from types import FrameType

from web.logging_setup import configure_logging
from web.server import run_server
from web.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

MIN_PORTS_PER_WORKER = 16
RESTART_DELAY_S = 1.0
_POLL_S = 0.2
# After the drain, a worker still closes peers and finalises recordings.
_EXIT_MARGIN_S = 10.0


def default_workers() -> int:
    """One worker per core."""
    return os.cpu_count() or 1


def worker_settings(settings: Settings, index: int) -> Settings:
    """The settings of worker ``index``: its node id and its slice of the media port range."""
    base = settings.node_id or f"{socket.gethostname()}-{os.getpid()}"
    ports = settings.media_udp_ports
    if ports is not None:
        first, last = ports
        size = (last - first + 1) // settings.workers
        if size < MIN_PORTS_PER_WORKER:
            raise SettingsError(
                f"media_udp_ports {first}-{last} gives each of {settings.workers} workers fewer "
                f"than {MIN_PORTS_PER_WORKER} ports"
            )
        ports = (first + index * size, first + (index + 1) * size - 1)
    return replace(settings, node_id=f"{base}-w{index}", media_udp_ports=ports)


def run_workers(settings: Settings) -> int:
    """Run ``settings.workers`` node processes until SIGTERM/SIGINT; returns the exit status."""
    configure_logging(settings.log_level)
    every = [worker_settings(settings, index) for index in range(settings.workers)]
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start(index: int) -> BaseProcess:
        process = context.Process(
            target=run_server, args=(every[index], True), name=f"worker-{index}"
        )
        process.start()
        logger.info(
            "worker started index=%d pid=%s node=%s", index, process.pid, every[index].node_id
        )
        return process

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    workers = {index: start(index) for index in range(settings.workers)}
    print(
        f"teleconsult: {settings.workers} workers on http://{settings.host}:{settings.port}",
        flush=True,
    )
    while not stopping:
        time.sleep(_POLL_S)
        for index, process in list(workers.items()):
            if not process.is_alive() and not stopping:
                logger.error("worker exited index=%d code=%s: restarting", index, process.exitcode)
                time.sleep(RESTART_DELAY_S)
                workers[index] = start(index)
    for process in workers.values():
        if process.pid is not None and process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + settings.drain_timeout_s + _EXIT_MARGIN_S
    for process in workers.values():
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            logger.error("worker did not exit in time pid=%s: killing it", process.pid)
            process.kill()
            process.join()
    logger.info("all workers stopped")
    return 0
