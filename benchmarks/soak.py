"""``teleconsult bench soak``: does the server's cost stay flat as history grows?

A real server runs as its own process (its CPU, RSS, file descriptors and threads are read from
/proc/<pid>; its event-loop tasks from /metrics) on 127.0.0.1, with the memory store or a
redis-server this benchmark starts and stops by PID. Simulated kiosks, clinicians, guests and an
admin (python-socketio clients in this process) churn for ``--minutes``: check-ins, offers and
accepts, joins and leaves, media calls through the relay (aiortc, pre-encoded VP8 + Opus, a
fraction of consultations), abrupt drops followed by a rejoin, invited guests admitted to the
room, and reconnects of every kind. Reported: resources after warm-up and at the end, server CPU
per consultation and ack latency p50/p99 in the first and the last minute, and every error.
With ``--store sentinel`` the server finds its Redis through three sentinels (a primary and two
replicas, all started here), and the primary is killed in the middle of the run (``--failover-at``):
reported are the time to the promotion and to the first request acknowledged after it. With a
Redis store, every acknowledged check-in and acceptance is looked up in the store at the end.
Everything is bounded: at most 240 minutes, 40 kiosks and 40 clinicians; no traffic leaves
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio
from aiohttp import ClientSession, ClientTimeout

from benchmarks._load import Clip, LoadPeer, make_clip, video_capability_check
from benchmarks._processes import free_port, spawn, start_redis, wait_http
from benchmarks._sentinel import SentinelSetup
from benchmarks.soak_failover import failover_at, kept
from rooms.roles import Role
from rooms.tasks import within
from signaling.auth import TokenAuthority

MAX_MINUTES = 240.0
MAX_PEOPLE = 40
ACK_TIMEOUT_S = 15.0
SAMPLE_EVERY_S = 5.0
CLOSE_TIMEOUT_S = 5.0
STEP_TIMEOUT_S = 20.0
# Nothing a simulated person does may hang the run: a visit taking longer is cut and counted.
VISIT_TIMEOUT_S = 180.0
PROGRESS_EVERY = 6  # samples
SERVICES = ("ophthalmology", "paediatrics")
# How long a simulated consultation lasts once both sides are in, by kind (seconds).
PLAIN_CALL_S = (2.0, 5.0)
# The records in the loop: a third of visits register a new child, the rest bring one back.
NEW_CHILD_SHARE = 1 / 3
CARDS_KEPT = 50
CHILD = {"display_name": "", "birth_year": 2017, "sex": "female", "record_consent": True}
REPORT = {"findings": {"diagnosis": "healthy"}, "summary": "All well.", "advice": "None."}
MEDIA_CALL_S = (10.0, 16.0)
FLAT_RESOURCES = 0.10
FLAT_COSTS = 0.20


@dataclass
class Sample:
    at: float
    rss_mb: float
    fds: int
    threads: int
    tasks: int | None
    cpu_s: float
    thread_names: tuple[str, ...] = ()


@dataclass
class Tally:
    """What the load saw: acks with latencies, errors, finished work."""

    started: float = field(default_factory=time.monotonic)
    acks: list[tuple[float, str, float]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    check_ins_at: list[float] = field(default_factory=list)
    checked_in: set[str] = field(default_factory=set)
    accepted: dict[str, str] = field(default_factory=dict)
    queue_push_bytes_max: int = 0

    def ack(self, event: str, started: float) -> None:
        now = time.monotonic()
        self.acks.append((now, event, (now - started) * 1000))

    def error(self, what: str) -> None:
        self.errors[what] += 1


class Client:
    """One Socket.IO connection: timed acks, pushes routed to waiters."""

    def __init__(self, url: str, token: str, tally: Tally) -> None:
        self.url = url
        self.token = token
        self.tally = tally
        self.sio = socketio.AsyncClient(reconnection=False)
        self.pushes: defaultdict[str, list[Any]] = defaultdict(list)
        self.changed = asyncio.Event()
        self.sio.on("*", self._push)

    async def _push(self, event: str, data: Any = None) -> None:
        if event == "queue.changed":
            size = len(json.dumps(data, separators=(",", ":")))
            self.tally.queue_push_bytes_max = max(self.tally.queue_push_bytes_max, size)
            return
        self.pushes[event].append(data)
        del self.pushes[event][:-50]
        self.changed.set()

    async def connect(self) -> dict[str, Any]:
        await within(
            self.sio.connect(
                self.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=10
            ),
            CLOSE_TIMEOUT_S * 4,
        )
        return dict(await self.wait("session.ready"))

    async def call(self, event: str, payload: dict[str, Any], expect_error: bool = False) -> Any:
        """The ack's ``ok`` value; an error ack is counted and raised unless expected."""
        started = time.monotonic()
        ack = await self.sio.call(event, payload, timeout=ACK_TIMEOUT_S)
        self.tally.ack(event, started)
        if "error" in ack:
            if not expect_error:
                self.tally.error(f"{event}:{ack['error']['code']}")
            raise RuntimeError(f"{event} refused: {ack['error']}")
        return ack["ok"]

    async def wait(
        self, event: str, where: Callable[[Any], bool] = lambda _: True, within_s: float = 30.0
    ) -> Any:
        """The first push of ``event`` satisfying ``where`` (consumed)."""
        deadline = time.monotonic() + within_s
        while True:
            for index, item in enumerate(self.pushes[event]):
                if where(item):
                    del self.pushes[event][index]
                    return item
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {event} push within {within_s}s")
            self.changed.clear()
            # Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that arrives
            # while the event has just fired (the push woke every waiter of this connection),
            # and the cancelled waiter would then wait on for ``within_s``.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self.changed.wait()

    async def drop(self) -> None:
        """Vanish without a goodbye: close the WebSocket under Socket.IO (a network loss)."""
        ws = getattr(self.sio.eio, "ws", None)
        if ws is not None:
            with contextlib.suppress(Exception):
                await within(ws.close(), CLOSE_TIMEOUT_S)
        await self.close()

    async def close(self) -> None:
        """Disconnect; a goodbye that gets no answer in time is counted and cut short."""
        try:
            await within(self.sio.disconnect(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            self.tally.error("disconnect_timeout")
        except Exception:  # already gone: nothing to say goodbye to
            pass
        http = getattr(self.sio.eio, "http", None)
        if isinstance(http, ClientSession) and not http.closed:
            await http.close()


class MediaCall:
    """One side of a relayed call: publishes the clip, counts what arrives, answers re-offers."""

    def __init__(self, client: Client, name: str, clip: Clip, consultation_id: str) -> None:
        self.client = client
        self.consultation_id = consultation_id
        self.peer = LoadPeer(name, clip, random.randrange(0, 120))
        self._answers: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await within(self._start(), STEP_TIMEOUT_S)

    async def _start(self) -> None:
        self.peer.publish()
        sdp = await self.peer.offer()
        ack = await self.client.call(
            "rtc.offer", {"consultation_id": self.consultation_id, "sdp": sdp}
        )
        await self.peer.accept(ack["sdp"])
        self._answers = asyncio.create_task(self._answer_offers())

    async def _answer_offers(self) -> None:
        while True:
            offer = await self.client.wait("rtc.offer", within_s=3600)
            answer = await self.peer.answer(offer["sdp"])
            await self.client.call(
                "rtc.answer", {"consultation_id": self.consultation_id, "sdp": answer}
            )

    def video_frames(self) -> int:
        return sum(s.frames for s in self.peer.streams.values() if s.kind == "video")

    async def close(self) -> None:
        if self._answers is not None:
            self._answers.cancel()
            await asyncio.gather(self._answers, return_exceptions=True)
        try:
            await within(self.peer.pc.close(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            self.client.tally.error("peer_close_timeout")


@dataclass
class Kiosk:
    """A kiosk's current connection, replaced when it drops and comes back, and the card codes
    of the children it registered (who come back for later visits)."""

    client: Client
    cards: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """What happens in one consultation (decided by the kiosk before it checks in)."""

    media: bool
    guest: bool
    drop: bool
    reconnect_first: bool


class Soak:
    """The simulated population and its loops."""

    def __init__(self, url: str, secret: str, args: argparse.Namespace, clip: Clip) -> None:
        self.url = url
        self.authority = TokenAuthority(secret)
        self.args = args
        self.clip = clip
        self.tally = Tally()
        self.stop = asyncio.Event()
        self.plans: dict[str, Plan] = {}
        self.rng = random.Random(7)
        self.visits = 0

    def token(self, role: Role, subject: str, **claims: Any) -> str:
        return self.authority.issue(role, subject, ttl_s=6 * 3600, **claims)

    async def connected(self, token: str) -> Client:
        client = Client(self.url, token, self.tally)
        try:
            await client.connect()
        except BaseException:
            await client.close()
            raise
        return client

    async def run(self, until: float) -> None:
        tasks = [asyncio.create_task(self._keep("admin", self._admin))]
        tasks += [
            asyncio.create_task(
                self._keep(
                    "clinician",
                    functools.partial(self._clinician, f"dr-{n:02}", SERVICES[n % len(SERVICES)]),
                )
            )
            for n in range(self.args.clinicians)
        ]
        interval = self.args.outlets / self.args.rate
        for n in range(self.args.outlets):
            outlet = functools.partial(
                self._outlet, f"outlet-{n:02}", SERVICES[n % len(SERVICES)], interval
            )
            tasks.append(asyncio.create_task(self._keep("outlet", outlet)))
        await asyncio.sleep(max(0.0, until - time.monotonic()))
        self.stop.set()
        done, pending = await asyncio.wait(tasks, timeout=60)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep(self, role: str, person: Callable[[], Awaitable[None]]) -> None:
        """Run one simulated person; if it fails, count why and start it again."""
        while not self.stop.is_set():
            try:
                await person()
            except Exception as exc:  # counted: the report lists every failure
                self.tally.error(f"{role}_restarted:{_kind(exc)}:{str(exc)[:60]}")
                await asyncio.sleep(1.0)

    def _plan(self) -> Plan:
        """The next visit's plan. Each trait is spread evenly over the visits, not drawn at
        random: media calls cost most of the server's CPU, and with random draws the number
        starting in a minute varies by about a quarter, so minutes would not be comparable."""
        n = self.visits
        self.visits += 1
        return Plan(
            media=_every(n, self.args.media_fraction, phase=0.0),
            guest=_every(n, self.args.guest_fraction, phase=0.5),
            drop=_every(n, self.args.drop_fraction, phase=0.25),
            reconnect_first=_every(n, 0.1, phase=0.75),
        )

    async def _guarded(self, what: str, step: Awaitable[None]) -> None:
        try:
            await step
        except RuntimeError:
            pass  # an error ack, already counted
        except (TimeoutError, socketio.exceptions.SocketIOError, OSError) as exc:
            self.tally.error(f"{what}:{_kind(exc)}")

    async def _outlet(self, subject: str, service: str, interval: float) -> None:
        await asyncio.sleep(self.rng.uniform(0, interval))
        token = self.token(Role.OUTLET, subject)
        kiosk = Kiosk(await self.connected(token))
        try:
            while not self.stop.is_set():
                began = time.monotonic()
                plan = self._plan()
                step = "visit"
                try:
                    if plan.reconnect_first or not kiosk.client.sio.connected:
                        step = "reconnect"
                        await kiosk.client.close()
                        kiosk.client = await self.connected(token)
                        self.tally.counts["outlet_reconnects"] += 1
                        step = "visit"
                    await within(self._visit(kiosk, subject, service, plan), VISIT_TIMEOUT_S)
                except (TimeoutError, socketio.exceptions.SocketIOError, OSError) as exc:
                    self.tally.error(f"kiosk_{step}:{_kind(exc)}")
                await asyncio.sleep(max(0.2, interval - (time.monotonic() - began)))
        finally:
            await kiosk.client.close()

    async def _patient(self, kiosk: Kiosk) -> str:
        """A child for this visit: a new one registered (a third of visits, and the first), or a
        returning one found by the card code typed at the kiosk."""
        if not kiosk.cards or self.rng.random() < NEW_CHILD_SHARE:
            child = {**CHILD, "display_name": f"Child {secrets.token_hex(3)}"}
            patient = (await kiosk.client.call("patient.register", child))["patient"]
            kiosk.cards.append(patient["card_code"])
            del kiosk.cards[:-CARDS_KEPT]
            self.tally.counts["patients_registered"] += 1
        else:
            card = {"card_code": self.rng.choice(kiosk.cards)}
            patient = (await kiosk.client.call("patient.lookup", card))["patient"]
            self.tally.counts["returning_children"] += 1
        return str(patient["patient_id"])

    async def _visit(self, kiosk: Kiosk, subject: str, service: str, plan: Plan) -> None:
        """One consultation from the kiosk's side (a drop leaves ``kiosk`` a new connection)."""
        client = kiosk.client
        try:
            payload = {
                "service": service,
                "outlet_id": subject,
                "patient_id": await self._patient(kiosk),
                "guardian_present": True,
            }
            checked = await client.call("consultation.check_in", payload)
        except RuntimeError:
            return
        cid = checked["consultation_id"]
        self.plans[cid] = plan
        self.tally.counts["check_ins"] += 1
        self.tally.checked_in.add(cid)
        self.tally.check_ins_at.append(time.monotonic())
        call: MediaCall | None = None
        try:
            await client.wait(
                "consultation.updated",
                lambda p: p["consultation"]["id"] == cid and p["consultation"]["state"] == "active",
                within_s=60,
            )
            await client.call("consultation.join", {"consultation_id": cid})
            if plan.drop:
                await client.drop()
                await asyncio.sleep(self.rng.uniform(0.5, 2.0))
                # kept on ``kiosk`` at once: the kiosk closes it even if this visit is cut short
                client = kiosk.client = await self.connected(self.token(Role.OUTLET, subject))
                await client.call("consultation.join", {"consultation_id": cid})
                self.tally.counts["drops_rejoined"] += 1
            if plan.media:
                call = MediaCall(client, subject, self.clip, cid)
                await call.start()
            await client.wait(
                "consultation.ended", lambda p: p["consultation_id"] == cid, within_s=90
            )
            self.tally.counts["completed"] += 1
        except RuntimeError:
            pass
        except (TimeoutError, socketio.exceptions.SocketIOError, OSError) as exc:
            self.tally.error(f"outlet_visit:{_kind(exc)}")
            with contextlib.suppress(Exception):
                await client.call("consultation.end", {"consultation_id": cid}, True)
        finally:
            if call is not None:
                await call.close()
            self.plans.pop(cid, None)

    async def _clinician(self, subject: str, service: str) -> None:
        token = self.token(Role.SPECIALIST, subject, services=[service])
        client = await self.connected(token)
        handled = 0
        try:
            await client.call("presence.set", {"status": "available"})
            while not self.stop.is_set():
                try:
                    offer = await client.wait("consultation.offered", within_s=2)
                except TimeoutError:
                    continue
                await self._guarded(
                    "consult",
                    within(self._consult(client, subject, offer), VISIT_TIMEOUT_S),
                )
                handled += 1
                if handled % 15 == 0:
                    await client.close()
                    client = await self.connected(token)
                    await client.call("presence.set", {"status": "available"})
                    self.tally.counts["clinician_reconnects"] += 1
        finally:
            await client.close()

    async def _consult(self, client: Client, subject: str, offer: dict[str, Any]) -> None:
        cid = offer["consultation"]["id"]
        try:
            await client.call("consultation.accept", {"consultation_id": cid}, expect_error=True)
        except RuntimeError:
            self.tally.counts["offers_gone_before_accept"] += 1
            return
        self.tally.accepted[cid] = subject
        # Busy while in a call (pairing already skips it): exercises presence compare-and-set.
        await client.call("presence.set", {"status": "busy"})
        patient_id = offer["consultation"].get("patient_id")
        if patient_id:
            await client.call("patient.history", {"patient_id": patient_id})
        plan = self.plans.get(cid, Plan(False, False, False, False))
        call: MediaCall | None = None
        guest: Client | None = None
        try:
            if plan.media:
                call = MediaCall(client, subject, self.clip, cid)
                await call.start()
            if plan.guest:
                guest = await self._guest(client, cid)
            low, high = MEDIA_CALL_S if plan.media else PLAIN_CALL_S
            # A dropped kiosk needs a few seconds to come back and rejoin before the end.
            await asyncio.sleep(self.rng.uniform(low, high) + (4.0 if plan.drop else 0.0))
            if call is not None:
                if call.video_frames() > 0:
                    self.tally.counts["media_calls_with_frames"] += 1
                else:
                    self.tally.error("media_call:no_frames")
            if guest is not None:
                await guest.call("consultation.leave", {"consultation_id": cid})
            await client.call("consultation.notes", {"consultation_id": cid, "notes": "ok"})
            await client.call("report.save", {"consultation_id": cid, **REPORT})
            await client.call("report.finalise", {"consultation_id": cid})
            self.tally.counts["reports_finalised"] += 1
            await client.call("consultation.end", {"consultation_id": cid})
        finally:
            if call is not None:
                await call.close()
            if guest is not None:
                await guest.close()
            await client.call("presence.set", {"status": "available"})

    async def _guest(self, clinician: Client, cid: str) -> Client:
        invite = await clinician.call(
            "consultation.invite", {"consultation_id": cid, "guest_role": "parent"}
        )
        async with ClientSession(timeout=ClientTimeout(total=ACK_TIMEOUT_S)) as http:
            started = time.monotonic()
            async with http.post(
                f"{self.url}/api/invites/{invite['invite_code']}/redeem", json={"name": "Parent"}
            ) as response:
                redeemed = await response.json()
            self.tally.ack("invite.redeem", started)
        guest = await self.connected(redeemed["token"])
        await guest.call("consultation.join", {"consultation_id": cid})
        waiting = await clinician.wait(
            "consultation.guest_waiting", lambda p: p["consultation_id"] == cid
        )
        await clinician.call(
            "consultation.admit",
            {"consultation_id": cid, "guest_id": waiting["guest"]["participant_id"]},
        )
        self.tally.counts["guests_admitted"] += 1
        return guest

    async def _admin(self) -> None:
        client = await self.connected(self.token(Role.ADMIN, "admin-soak"))
        try:
            while not self.stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await within(self.stop.wait(), 20)
                overview = await client.call("admin.overview", {})
                active = overview["active"]
                if active:
                    await client.call(
                        "audit.list", {"consultation_id": active[0]["id"], "limit": 50}
                    )
        except RuntimeError:
            pass
        finally:
            await client.close()


class ServerUnderTest:
    """The teleconsult server (and maybe a redis-server) as child processes, stopped by PID."""

    def __init__(self, store: str, workdir: Path, ended_retention_s: float | None) -> None:
        self.store = store
        self.ended_retention_s = ended_retention_s
        self.workdir = workdir
        self.secret = secrets.token_urlsafe(48)
        self.metrics_token = secrets.token_urlsafe(48)
        self.port = free_port()
        self.server: subprocess.Popen[bytes] | None = None
        self.redis: subprocess.Popen[bytes] | None = None
        self.sentinel: SentinelSetup | None = None
        self.store_url: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "web.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--media-ip",
            "127.0.0.1",
            "--recordings",
            str(self.workdir / "recordings"),
            "--records-url",
            f"sqlite:///{self.workdir / 'records.db'}",
            "--log-level",
            "WARNING",
        ]
        if self.store == "redis":
            self.redis, self.store_url = await start_redis(self.workdir)
        elif self.store == "sentinel":
            # Two replicas: after the failover one still confirms the writes that wait for it.
            self.sentinel = SentinelSetup(self.workdir / "sentinel", replicas=2)
            await self.sentinel.start()
            self.store_url = self.sentinel.url
        if self.store_url is not None:
            command += ["--store", self.store_url]
        env = {
            **os.environ,
            "TELECONSULT_SECRET": self.secret,
            "TELECONSULT_METRICS_TOKEN": self.metrics_token,
            "TELECONSULT_MAX_CONNECTIONS_PER_ADDRESS": "1000",
        }
        if self.ended_retention_s is not None:
            env["TELECONSULT_ENDED_RETENTION_S"] = str(self.ended_retention_s)
        self.server = spawn(command, env, self.workdir / "server.log")
        await wait_http(f"{self.url}/healthz", self.server)

    def sample(self, tasks: int | None) -> Sample:
        assert self.server is not None
        pid = self.server.pid
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return Sample(
            at=time.monotonic(),
            rss_mb=int(fields["VmRSS"].split()[0]) / 1024,
            fds=len(os.listdir(f"/proc/{pid}/fd")),
            threads=int(fields["Threads"]),
            tasks=tasks,
            cpu_s=(int(stat[11]) + int(stat[12])) / ticks,
            thread_names=_thread_names(pid),
        )

    async def tasks(self, http: ClientSession) -> int | None:
        headers = {"Authorization": f"Bearer {self.metrics_token}"}
        with contextlib.suppress(OSError, TimeoutError):
            async with http.get(f"{self.url}/metrics", headers=headers) as response:
                for line in (await response.text()).splitlines():
                    if line.startswith("teleconsult_asyncio_tasks "):
                        return int(float(line.split()[1]))
        return None

    def stop(self) -> None:
        """The server first, so that it leaves the cluster while its Redis still answers."""
        for process in (self.server, self.redis):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self.sentinel is not None:
            self.sentinel.stop()


def _thread_names(pid: int) -> tuple[str, ...]:
    """The server's threads by name (e.g. ``asyncio_0``), to tell a pool's growth from a leak."""
    names = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            names.append(Path(f"/proc/{pid}/task/{task}/comm").read_text().strip())
    return tuple(sorted(names))


def _every(n: int, fraction: float, phase: float) -> bool:
    """Whether visit ``n`` has a trait that ``fraction`` of visits have, spread evenly
    (``phase`` in [0, 1) offsets one trait's pattern from another's)."""
    return math.floor((n + 1) * fraction + phase) > math.floor(n * fraction + phase)


def _kind(exc: BaseException) -> str:
    """``socketio.TimeoutError`` (an ack that never came) is not ``builtins.TimeoutError``."""
    return f"{type(exc).__module__.split('.')[0]}.{type(exc).__name__}"


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _window(tally: Tally, samples: list[Sample], start: float, end: float) -> dict[str, Any]:
    """Latency and CPU per consultation between ``start`` and ``end`` (monotonic)."""
    acks = [ms for at, _, ms in tally.acks if start <= at < end]
    check_ins = [
        ms for at, event, ms in tally.acks if start <= at < end and event == "consultation.check_in"
    ]
    inside = [s for s in samples if start <= s.at <= end]
    consultations = sum(1 for at in tally.check_ins_at if start <= at < end)
    cpu_s = inside[-1].cpu_s - inside[0].cpu_s if len(inside) >= 2 else 0.0
    span = inside[-1].at - inside[0].at if len(inside) >= 2 else 0.0
    return {
        "consultations": consultations,
        "server_cpu_pct": round(100 * cpu_s / span, 1) if span else None,
        "cpu_ms_per_consultation": round(1000 * cpu_s / consultations, 1)
        if consultations
        else None,
        "ack_ms_p50": _round(_percentile(acks, 0.5)),
        "ack_ms_p99": _round(_percentile(acks, 0.99)),
        "check_in_ms_p50": _round(_percentile(check_ins, 0.5)),
        "check_in_ms_p99": _round(_percentile(check_ins, 0.99)),
        "acks": len(acks),
    }


def _minute_starts(warm: float, end_at: float) -> list[float]:
    """Start of every whole minute from the end of the warm-up to the end."""
    return [warm + 60 * i for i in range(int((end_at - warm) // 60))]


def _trend_pct_per_10_min(values: list[float | None]) -> float | None:
    """Least-squares slope of a per-minute series, as % of its mean per 10 minutes."""
    points = [(float(i), v) for i, v in enumerate(values) if v is not None]
    if len(points) < 3:
        return None
    slope, _ = statistics.linear_regression([x for x, _ in points], [y for _, y in points])
    mean = statistics.fmean(y for _, y in points)
    return round(100 * 10 * slope / mean, 1) if mean else None


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 1) if known else None


def _by_event(tally: Tally, start: float, end: float) -> dict[str, dict[str, Any]]:
    """Ack latency per event over the whole measured run."""
    latencies: defaultdict[str, list[float]] = defaultdict(list)
    for at, event, ms in tally.acks:
        if start <= at <= end:
            latencies[event].append(ms)
    return {
        event: {
            "count": len(values),
            "p50": _round(_percentile(values, 0.5)),
            "p99": _round(_percentile(values, 0.99)),
        }
        for event, values in sorted(latencies.items())
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _ratio(first: float | None, last: float | None) -> float | None:
    if first is None or last is None or first == 0:
        return None
    return round(last / first, 3)


def report(
    args: argparse.Namespace, tally: Tally, samples: list[Sample], warm: float
) -> dict[str, Any]:
    end_at = samples[-1].at
    first = _window(tally, samples, warm, warm + 60)
    last = _window(tally, samples, end_at - 60, end_at + 1)
    # Medians over the first and the last minute: one sample may catch a call being set up.
    resources: dict[str, dict[str, Any]] = {}
    for name in ("rss_mb", "fds", "threads", "tasks"):
        start = _median([getattr(s, name) for s in samples if warm <= s.at < warm + 60])
        end = _median([getattr(s, name) for s in samples if end_at - 60 <= s.at])
        resources[name] = {"start": start, "end": end, "ratio": _ratio(start, end)}
    warm_samples = [s for s in samples if s.at >= warm] or samples
    thread_names = {
        "start": dict(Counter(warm_samples[0].thread_names)),
        "end": dict(Counter(samples[-1].thread_names)),
    }
    flat_resources = all(
        r["ratio"] is not None and r["ratio"] <= 1 + FLAT_RESOURCES for r in resources.values()
    )
    cost_ratios = {
        key: _ratio(first[key], last[key])
        for key in ("cpu_ms_per_consultation", "ack_ms_p50", "ack_ms_p99")
    }
    # One minute holds ~70 check-ins and a varying number of live calls: noisy. Five-minute
    # windows and the per-minute trend tell growth from noise.
    first_5 = _window(tally, samples, warm, warm + 300)
    last_5 = _window(tally, samples, end_at - 300, end_at + 1)
    minutes = [_window(tally, samples, start, start + 60) for start in _minute_starts(warm, end_at)]
    return {
        "benchmark": "soak",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "store": args.store,
        "minutes": args.minutes,
        "warmup_s": args.warmup_s,
        "ended_retention_s": args.ended_retention_s,
        "rate_per_s": args.rate,
        "outlets": args.outlets,
        "clinicians": args.clinicians,
        "counts": dict(tally.counts),
        "errors": dict(tally.errors),
        "queue_changed_max_bytes": tally.queue_push_bytes_max,
        "resources": resources,
        "thread_names": thread_names,
        "resources_flat_within_10pct": flat_resources,
        "first_minute": first,
        "last_minute": last,
        "ack_ms_by_event": _by_event(tally, warm, end_at),
        "last_over_first": cost_ratios,
        "first_5_minutes": first_5,
        "last_5_minutes": last_5,
        "last_5_over_first_5": {
            key: _ratio(first_5[key], last_5[key])
            for key in ("cpu_ms_per_consultation", "ack_ms_p50", "ack_ms_p99")
        },
        "per_minute": minutes,
        "cpu_per_consultation_trend_pct_per_10_min": _trend_pct_per_10_min(
            [m["cpu_ms_per_consultation"] for m in minutes]
        ),
        "costs_flat_within_20pct": all(
            r is not None and r <= 1 + FLAT_COSTS for r in cost_ratios.values()
        ),
    }


def progress(tally: Tally, sample: Sample) -> None:
    """One line on stderr now and then, so a long run can be watched."""
    counts = ", ".join(f"{k}={v}" for k, v in sorted(tally.counts.items()))
    errors = f"errors={sum(tally.errors.values())} {dict(tally.errors.most_common(3))}"
    print(
        f"{time.strftime('%H:%M:%S')} {counts}; {errors}; "
        f"server rss={sample.rss_mb:.0f} MB fds={sample.fds} tasks={sample.tasks}",
        file=sys.stderr,
        flush=True,
    )


def print_table(result: dict[str, Any]) -> None:
    print(f"soak: store={result['store']} minutes={result['minutes']} date={result['date']}")
    print("counts: " + ", ".join(f"{k}={v}" for k, v in sorted(result["counts"].items())))
    print("errors: " + (", ".join(f"{k}={v}" for k, v in result["errors"].items()) or "none"))
    print(f"largest queue.changed push: {result['queue_changed_max_bytes']} bytes")
    print(f"{'resource':<10}{'start':>10}{'end':>10}{'end/start':>11}")
    for name, r in result["resources"].items():
        print(f"{name:<10}{r['start']!s:>10}{r['end']!s:>10}{r['ratio']!s:>11}")
    print(f"threads by name: start {result['thread_names']['start']}")
    print(f"                 end   {result['thread_names']['end']}")
    print(
        f"{'window':<14}{'check-ins':>10}{'cpu %':>8}{'cpu ms/c':>10}{'ack p50':>9}{'ack p99':>9}"
    )
    for label in ("first_minute", "last_minute"):
        w = result[label]
        print(
            f"{label:<14}{w['consultations']:>10}{w['server_cpu_pct']!s:>8}"
            f"{w['cpu_ms_per_consultation']!s:>10}{w['ack_ms_p50']!s:>9}{w['ack_ms_p99']!s:>9}"
        )
    print(f"{'event':<26}{'acks':>7}{'p50 ms':>9}{'p99 ms':>9}")
    for event, stats in result["ack_ms_by_event"].items():
        print(f"{event:<26}{stats['count']:>7}{stats['p50']!s:>9}{stats['p99']!s:>9}")
    print(f"last/first minute: {result['last_over_first']}")
    print(f"last/first 5 minutes: {result['last_5_over_first_5']}")
    series = " ".join(str(m["cpu_ms_per_consultation"]) for m in result["per_minute"])
    print(f"cpu ms per consultation by minute: {series}")
    print(
        "cpu per consultation trend: "
        f"{result['cpu_per_consultation_trend_pct_per_10_min']} % per 10 min"
    )
    print(
        f"resources flat (10%): {result['resources_flat_within_10pct']}; "
        f"costs flat (20%): {result['costs_flat_within_20pct']}"
    )
    if "failover" in result:
        print("failover: " + ", ".join(f"{k}={v}" for k, v in result["failover"].items()))
    if "kept" in result:
        print("kept: " + ", ".join(f"{k}={v}" for k, v in result["kept"].items()))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    video_capability_check()
    clip = make_clip()
    workdir = Path(tempfile.mkdtemp(prefix="teleconsult-soak-"))
    server = ServerUnderTest(args.store, workdir, args.ended_retention_s)
    samples: list[Sample] = []
    try:
        await server.start()
        soak = Soak(server.url, server.secret, args, clip)
        began = time.monotonic()
        warm = began + args.warmup_s
        until = warm + args.minutes * 60
        load = asyncio.create_task(soak.run(until))
        failover = None
        if server.sentinel is not None:
            at = warm + args.failover_at * 60
            failover = asyncio.create_task(
                failover_at(server.sentinel, at, soak.tally.acks, soak.tally.errors)
            )
        async with ClientSession(timeout=ClientTimeout(total=5)) as http:
            while not load.done():
                samples.append(server.sample(await server.tasks(http)))
                if len(samples) % PROGRESS_EVERY == 0:
                    progress(soak.tally, samples[-1])
                await asyncio.wait([load], timeout=SAMPLE_EVERY_S)
            samples.append(server.sample(await server.tasks(http)))
        load.result()
        result = report(args, soak.tally, [s for s in samples if s.at <= until + 1], warm)
        if failover is not None:
            result["failover"] = {"at_min": args.failover_at, **await failover}
        if server.store_url is not None:
            tally = soak.tally
            result["kept"] = await kept(server.store_url, tally.checked_in, tally.accepted)
        return result
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work folder kept: {workdir}", file=sys.stderr)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="teleconsult bench soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="measured minutes")
    parser.add_argument(
        "--store",
        choices=["memory", "redis", "sentinel"],
        default="memory",
        help="sentinel: Redis through three sentinels, the primary killed at --failover-at",
    )
    parser.add_argument(
        "--failover-at",
        type=float,
        default=None,
        help="with --store sentinel: measured minute at which the primary is killed "
        "(default: the middle of the run)",
    )
    parser.add_argument("--rate", type=float, default=1.2, help="check-ins per second")
    parser.add_argument("--outlets", type=int, default=30)
    parser.add_argument("--clinicians", type=int, default=16)
    parser.add_argument("--media-fraction", type=float, default=0.2)
    parser.add_argument("--guest-fraction", type=float, default=0.15)
    parser.add_argument("--drop-fraction", type=float, default=0.1)
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=300.0,
        help="seconds before the first measured minute (RSS and concurrent calls settle in ~5 min)",
    )
    parser.add_argument(
        "--ended-retention-s",
        type=float,
        default=None,
        help="the server's ended_retention_s (default: its own, 24 h): ended consultations and "
        "their audit stay in the memory store this long, so a shorter one shows the steady state",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (server log)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes must be in (0, {MAX_MINUTES}]")
    if not (1 <= args.outlets <= MAX_PEOPLE and 1 <= args.clinicians <= MAX_PEOPLE):
        parser.error(f"--outlets and --clinicians must be 1..{MAX_PEOPLE}")
    if not 0 < args.rate <= 10:
        parser.error("--rate must be in (0, 10]")
    if args.failover_at is not None and args.store != "sentinel":
        parser.error("--failover-at needs --store sentinel")
    if args.store == "sentinel":
        args.failover_at = args.minutes / 2 if args.failover_at is None else args.failover_at
        if not 0 <= args.failover_at < args.minutes:
            parser.error("--failover-at must be within the measured minutes")
    return args


async def main(argv: list[str]) -> int:
    args = parse(argv)
    # A dropped connection makes the Socket.IO client log an error: expected here.
    logging.getLogger("engineio.client").setLevel(logging.CRITICAL)
    logging.getLogger("socketio.client").setLevel(logging.CRITICAL)
    result = await run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0
