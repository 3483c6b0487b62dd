"""Real Chromium across nodes: the kiosk's page on node A, the console's on node B, media pinned
to a third node; when that node is killed both pages follow ``media.moved`` to the spare node."""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as redis
from playwright.async_api import Browser, expect

from benchmarks.browser_call import (
    CALL_TIMEOUT_MS,
    OUTLET_ID,
    SPECIALIST_ID,
    check_in,
    open_desk,
    tile,
)
from rooms.nodes import NodeDirectory
from rooms.roles import Role
from tests.browser.harness import DESK_VIEWPORT, open_page, wait_audible, wait_moving_video
from tests.cluster.harness import spawn_nodes, stop_nodes
from tests.conftest import RedisServer
from tests.server_process import ServerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def nodes(
    tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[dict[str, ServerProcess]]:
    client = redis.Redis.from_url(redis_server.url)
    await client.flushdb()
    await client.aclose()
    running = await spawn_nodes(
        tmp_path,
        redis_server.url,
        {"node-a": 0, "node-b": 0, "node-c": 4, "node-d": 4},
        relay_timeout_s="3.0",
    )
    yield running
    await stop_nodes(running)


async def test_kiosk_on_one_node_console_on_another_media_on_a_third(
    browser: Browser, nodes: dict[str, ServerProcess], redis_server: RedisServer
) -> None:
    desk = await open_desk(browser, nodes["node-b"])
    kiosk = await check_in(browser, nodes["node-a"])
    directory = NodeDirectory(redis_server.url)
    try:
        dialog = desk.page.locator("#offer-dialog")
        await expect(dialog).to_be_visible(timeout=CALL_TIMEOUT_MS)
        await desk.page.get_by_role("button", name="Accept").click()
        await expect(kiosk.page.locator("body")).to_have_attribute(
            "data-screen", "call", timeout=CALL_TIMEOUT_MS
        )
        await wait_moving_video(kiosk, tile(SPECIALIST_ID))
        await wait_moving_video(desk, tile(OUTLET_ID))
        assert await wait_audible(kiosk, tile(SPECIALIST_ID)) > 0.01
        assert await wait_audible(desk, tile(OUTLET_ID)) > 0.01
        (consultation_id,) = await directory.pins_of("node-c") or await directory.pins_of("node-d")
        pinned = await directory.pin_of(consultation_id)
        assert pinned in {"node-c", "node-d"}

        admin_token = nodes["node-a"].token(Role.ADMIN, "admin-1", name="Admin")
        admin = await open_page(
            browser, "admin", f"{nodes['node-a'].url}/admin#token={admin_token}", DESK_VIEWPORT
        )
        try:
            await expect(admin.page.locator("#node-rows tr")).to_have_count(4)
            await expect(admin.page.locator(f'[data-node="{pinned}"]')).to_contain_text("1 / 4")
            await expect(admin.page.locator('[data-node="node-a"]')).to_contain_text("0 / 0")
        finally:
            await admin.context.close()

        nodes[str(pinned)].process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        spare = ({"node-c", "node-d"} - {pinned}).pop()
        for _ in range(100):
            if await directory.pin_of(consultation_id) == spare:
                break
            await kiosk.page.wait_for_timeout(100)
        assert await directory.pin_of(consultation_id) == spare
        # The pages' new peer connections get moving video and sound from the spare node.
        await kiosk.page.wait_for_timeout(1000)
        await wait_moving_video(kiosk, tile(SPECIALIST_ID))
        await wait_moving_video(desk, tile(OUTLET_ID))
        assert await wait_audible(desk, tile(OUTLET_ID)) > 0.01
        print(f"pages had media again {time.monotonic() - killed_at:.1f}s after the kill")
        await expect(kiosk.page.locator("body")).to_have_attribute("data-screen", "call")
    finally:
        await directory.close()
        for handle in (kiosk, desk):
            await handle.context.close()
