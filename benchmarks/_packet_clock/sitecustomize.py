"""Loaded by ``benchmarks/packet_cost.py`` into the relay it starts (through ``PYTHONPATH``).

Times each packet the relay's receivers take whole (``ForwardingReceiver.receive_unparsed``
returning true: header read, receive statistics, NACK and REMB bookkeeping, then the sink, the
forwarding decision and every subscriber's serialise, protect and send) in this thread's CPU
time, by kind. At exit the relay server process writes the samples, in nanoseconds, as JSON to
``PACKET_COST_OUT``. Inert in any other process, and without that variable.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import sys
import time
from typing import Any

_OUT = os.environ.get("PACKET_COST_OUT")
_SERVER = "_relay_server"


def _install(out: str) -> None:
    try:
        module = importlib.import_module("media.aiortc_adapter")
    except ImportError:  # the layout before the adapter package (commit 4dc3f96 and earlier)
        module = importlib.import_module("media.forwarding")
    receiver_class: Any = module.ForwardingReceiver

    samples: dict[str, list[int]] = {"video": [], "audio": []}
    untimed = receiver_class.receive_unparsed
    clock = time.thread_time_ns

    def receive_unparsed(self: Any, data: bytes, arrival_time_ms: int) -> bool:
        started = clock()
        taken = untimed(self, data, arrival_time_ms)
        if taken:
            samples[self.track.kind].append(clock() - started)
        return taken

    receiver_class.receive_unparsed = receive_unparsed

    def write() -> None:
        if _SERVER in " ".join(sys.argv):
            with open(out, "w") as file:
                json.dump(samples, file)

    atexit.register(write)


if _OUT:
    _install(_OUT)
