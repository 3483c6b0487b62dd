"""Process gauges the soak benchmark and operators watch for leaks (event-loop tasks)."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Gauge


def _running_tasks() -> int:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # collected outside the event loop: nothing to count
        return 0


def register_process_gauges(registry: CollectorRegistry) -> None:
    """``teleconsult_asyncio_tasks``: tasks alive on the server's event loop when scraped."""
    Gauge(
        "teleconsult_asyncio_tasks",
        "asyncio tasks alive on the event loop",
        registry=registry,
    ).set_function(_running_tasks)
