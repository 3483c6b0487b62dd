"""Packet handlers run at once, finished by a task only when they wait (media/eager.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from media.eager import run_eagerly


async def test_a_handler_that_never_waits_runs_to_its_end_at_once() -> None:
    done: list[str] = []

    async def handler() -> None:
        done.append("handled")

    run_eagerly(handler())
    assert done == ["handled"]  # before this task yields to the loop


async def test_a_handler_that_waits_is_finished_by_a_task_once_its_future_is_done() -> None:
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[str] = loop.create_future()
    steps: list[str] = []

    async def handler() -> None:
        steps.append("before")
        steps.append(await reply)
        await asyncio.sleep(0)  # a bare yield is finished too
        steps.append("after")

    run_eagerly(handler())
    assert steps == ["before"]
    loop.call_later(0.01, reply.set_result, "reply")
    for _ in range(100):
        if "after" in steps:
            break
        await asyncio.sleep(0.01)
    assert steps == ["before", "reply", "after"]


async def test_a_failing_handler_is_logged_and_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler() -> None:
        raise ValueError("malformed")

    async def later() -> None:
        await asyncio.sleep(0)
        raise ValueError("malformed later")

    with caplog.at_level(logging.ERROR, logger="media.eager"):
        run_eagerly(handler())
        run_eagerly(later())
        await asyncio.sleep(0.05)
    failures = [r for r in caplog.records if r.getMessage() == "packet handler failed"]
    assert len(failures) == 2
