"""Redis Sentinel promotes the replica while two nodes carry a live consultation and a queue.

A primary, one replica and three sentinels of this test's own (``sentinel_setup``); two
``teleconsult serve`` nodes on the Sentinel URL: the outlet on node A, the specialist on node B,
the media pinned to B (A carries none), so requests and media cross nodes. The primary is
killed with SIGKILL while kiosks keep checking in. Nothing acknowledged may be lost, the media
may not stop, and requests must succeed again within 15 s of the promotion.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import redis.asyncio as redis

from benchmarks._sentinel import SentinelSetup
from rooms.tasks import within
from tests.cluster.harness import (
    FollowingClient,
    admin_on,
    consultation_across,
    spawn_nodes,
    stop_nodes,
)
from tests.media.clients import ClientPeer, assert_see_and_hear_each_other
from tests.signaling.consultation_peers import Cast, Peer, check_in_payload
from tests.signaling.test_consultation_redis_outage import last_pts, until_ok

RED, GREEN = (220, 40, 40), (40, 200, 60)
VIDEO_HZ = 90000
# The target: requests succeed again within this of the promotion.
BACK_WITHIN_S = 15.0
KIOSKS = 6
CHECK_INS_PER_KIOSK = 3  # under the per-outlet limit of open consultations (4)


class CheckIns:
    """Kiosks that keep checking in, one request at a time, through the failover; remembers
    every acknowledged consultation and how many were refused as ``unavailable``."""

    def __init__(self, kiosks: list[tuple[str, Peer]]) -> None:
        self.kiosks = kiosks
        self.acked: list[str] = []
        self.unavailable = 0
        self.queued = asyncio.Event()  # two acknowledged: there is a queue

    async def run(self) -> None:
        done = dict.fromkeys((name for name, _ in self.kiosks), 0)
        while min(done.values()) < CHECK_INS_PER_KIOSK:
            for name, kiosk in self.kiosks:
                if done[name] >= CHECK_INS_PER_KIOSK:
                    continue
                ack = await kiosk.call("consultation.check_in", check_in_payload(name))
                if "ok" in ack:
                    self.acked.append(str(ack["ok"]["consultation_id"]))
                    done[name] += 1
                    if len(self.acked) >= 2:
                        self.queued.set()
                else:
                    assert ack["error"]["code"] == "unavailable", ack
                    self.unavailable += 1
                await asyncio.sleep(0.2)


async def queue_ids(admin: Peer, service: str = "ophthalmology") -> list[str]:
    listed = await admin.ok("queue.list", {"service": service})
    return [entry["consultation_id"] for entry in listed["entries"]]


async def test_a_sentinel_failover_loses_no_acknowledged_change_and_media_flows(
    tmp_path: Path, sentinel_setup: SentinelSetup
) -> None:
    # With the primary gone its one replica has none left: each check-in, acceptance and
    # consent then waits out the replica wait, kept short here.
    nodes = await spawn_nodes(
        tmp_path,
        sentinel_setup.url,
        {"node-a": 0, "node-b": 4},
        relay_timeout_s="2.0",
        redis_wait_timeout_s="0.25",
    )
    on_a, on_b = Cast(nodes["node-a"]), Cast(nodes["node-b"])
    clients: list[FollowingClient] = []
    loop = asyncio.get_running_loop()
    try:
        cid, outlet, doctor = await consultation_across(on_a, on_b)
        ref = {"consultation_id": cid}
        await outlet.ok("consultation.consent", {**ref, "given": True})
        outlet_media = FollowingClient(outlet, ClientPeer("outlet-1", rgb=RED), cid)
        doctor_media = FollowingClient(doctor, ClientPeer("dr-1", rgb=GREEN, hz=660.0), cid)
        clients += [outlet_media, doctor_media]
        await outlet_media.start()
        await doctor_media.start()
        await assert_see_and_hear_each_other(outlet_media.media, doctor_media.media)

        kiosks = [
            (f"outlet-k{i}", await (on_a if i % 2 else on_b).outlet(f"outlet-k{i}"))
            for i in range(KIOSKS)
        ]
        admin = await admin_on(on_a)
        check_ins = CheckIns(kiosks)
        loader = asyncio.create_task(check_ins.run())
        await within(check_ins.queued.wait(), 15)
        queued_before = await queue_ids(admin)
        assert len(queued_before) >= 2

        old = await sentinel_setup.kill_primary()
        pts = [(last_pts(doctor_media.media, "outlet-1"), last_pts(outlet_media.media, "dr-1"))]
        promoted = await sentinel_setup.wait_promotion(old.port)
        promoted_at = loop.time()
        pts.append((last_pts(doctor_media.media, "outlet-1"), last_pts(outlet_media.media, "dr-1")))
        await until_ok(admin, "admin.overview", {}, within_s=BACK_WITHIN_S)
        back_s = loop.time() - promoted_at
        assert back_s < BACK_WITHIN_S
        await within(loader, 30)
        print(f"requests answered {back_s:.1f}s after the promotion")
        assert check_ins.unavailable > 0, "no request met the failover: the test proves nothing"

        # The nodes now write to the promoted replica: node records and the pin are there.
        promoted_client = redis.Redis(port=promoted, decode_responses=True)
        try:
            for _ in range(20):
                beats = [await promoted_client.exists(f"tc:node:{n}") for n in nodes]
                if all(beats):
                    break
                await asyncio.sleep(0.25)
            assert all(beats), "a node did not register on the new primary"
            assert await promoted_client.hget("tc:pins", cid) == "node-b"
        finally:
            await promoted_client.aclose()
        listing = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "web.cli",
            "nodes",
            "--store",
            sentinel_setup.url,
            "--json",
            stdout=asyncio.subprocess.PIPE,
        )
        listed, _ = await listing.communicate()
        assert listing.returncode == 0, listed
        assert {n["node_id"]: n["live"] for n in json.loads(listed)["nodes"]} == {
            "node-a": True,
            "node-b": True,
        }

        # Media flowed all along, both ways, on the node that carried it.
        pts.append((last_pts(doctor_media.media, "outlet-1"), last_pts(outlet_media.media, "dr-1")))
        for earlier, later in zip(pts, pts[1:], strict=False):
            assert later[0] > earlier[0] and later[1] > earlier[1], pts
        await assert_see_and_hear_each_other(outlet_media.media, doctor_media.media)
        assert not outlet_media.moves and not doctor_media.moves

        # Every acknowledged change is there: the consultation, its acceptance and consent, the
        # queue in its order, every check-in acknowledged before, during and after the failover.
        consultation = (await outlet.ok("consultation.join", ref))["consultation"]
        assert consultation["state"] == "active" and consultation["consent"] is not None
        assert {p["participant_id"] for p in consultation["participants"]} >= {"outlet-1", "dr-1"}
        queued_after = await queue_ids(admin)
        assert queued_after[: len(queued_before)] == queued_before
        # (A check-in refused by the failover after its write may be queued too: not acknowledged.)
        assert set(check_ins.acked) <= set(queued_after)
        assert len(check_ins.acked) == KIOSKS * CHECK_INS_PER_KIOSK

        # A new check-in is paired with a clinician who comes online after the failover.
        kiosk = await on_a.outlet("outlet-new")
        payload = check_in_payload("outlet-new", service="paediatrics")
        new_id = (await kiosk.ok("consultation.check_in", payload))["consultation_id"]
        colleague = await on_b.specialist("dr-2", "paediatrics")
        await colleague.ok("presence.set", {"status": "available"})
        offer = await colleague.next("consultation.offered", within_s=15)
        assert offer["consultation"]["id"] == new_id
        accepted = await colleague.ok("consultation.accept", {"consultation_id": new_id})
        assert accepted["consultation"]["state"] == "active"
        await doctor.ok("consultation.end", ref)
    finally:
        for client in clients:
            await client.close()
        await on_a.close()
        await on_b.close()
        await stop_nodes(nodes)
