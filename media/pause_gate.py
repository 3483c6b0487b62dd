"""The pause gate of one subscriber's video: flowing, paused for a weak link, or probing.

Pure logic with the clock passed in, like :mod:`media.congestion`, whose estimator supplies
the :class:`~media.congestion.LinkEvidence` the gate judges probes by.
"""

from __future__ import annotations

from enum import Enum

from media.congestion import CongestionConfig, LinkEvidence


class GateState(Enum):
    FLOWING = "flowing"
    PAUSED = "paused"
    PROBING = "probing"


class PauseGate:
    """Hysteresis between sending video to a subscriber, pausing it, and probing to resume.

    Paused, the gate probes after a back-off (``probe_backoff_s``; each failed probe doubles it,
    up to ``probe_backoff_max_s``), when the reports do not show the link still congested. A
    probe sends the lowest video rate and is judged by the receiver reports about it, not by the
    REMB (whose estimator remembers the starved link): it fails as soon as they show loss
    (``probe_fail_loss`` over all streams, or ``probe_max_loss`` on audio: a probe must not
    starve the sound) or a queue (``probe_queue_s`` above the lowest RTT); it holds once
    ``probe_confirm_s`` have passed with a report from the probe's last second, room for video
    and at least ``probe_sent_min_s`` of the lowest video rate actually sent, and fails without
    them by ``probe_max_s``. A pause within ``resume_stable_s`` of a resume counts as a failed
    probe.

    By default ``probe_backoff_max_s`` equals ``probe_backoff_s`` (3 s), so the back-off does
    not grow: in real Chromium a link that recovered resumed within 10 s only with probes that
    close together (6.3 to 9.9 s measured; 7.3 to 15.4 s with 4 s between them). Raise the
    maximum to trade that for fewer probes on a link that stays weak.
    """

    def __init__(self, config: CongestionConfig) -> None:
        self._config = config
        self.state = GateState.FLOWING
        self._low_since: float | None = None
        self._changed_at = 0.0
        self._resumed_at: float | None = None
        self._backoff_s = config.probe_backoff_s

    @property
    def video_paused(self) -> bool:
        """What the subscriber is told: paused until a probe has held."""
        return self.state is not GateState.FLOWING

    @property
    def forwarding(self) -> bool:
        """Whether video is being sent (also while probing)."""
        return self.state is not GateState.PAUSED

    def update(
        self,
        video_room_kbps: float,
        now: float,
        evidence: LinkEvidence | None = None,
        probe_sent_kbit: float | None = None,
        floor_kbps: float | None = None,
    ) -> GateState | None:
        """Feed the room for video, the reports' evidence and the video sent since the probe
        began (``None``: not metered) now; the new state if it changes.

        ``floor_kbps``: the room video needs (``None``: ``video_min_kbps``; less for temporal
        layers whose base layer needs less, see :func:`media.layer_selection.video_floor_kbps`).
        """
        evidence = evidence or LinkEvidence()
        floor = self._config.video_min_kbps if floor_kbps is None else floor_kbps
        if self.state is GateState.PAUSED:
            if now - self._changed_at >= self._backoff_s and self._calm(evidence, now):
                return self._enter(GateState.PROBING, now)
            return None
        if self.state is GateState.PROBING:
            return self._judge_probe(video_room_kbps, floor, now, evidence, probe_sent_kbit)
        if video_room_kbps >= floor:
            self._low_since = None
            return None
        if self._low_since is None:
            self._low_since = now
        if now - self._low_since < self._config.pause_hold_s:
            return None
        recent = self._resumed_at is not None and (
            now - self._resumed_at < self._config.resume_stable_s
        )
        self._backoff_s = self._longer_backoff() if recent else self._config.probe_backoff_s
        return self._enter(GateState.PAUSED, now)

    def _calm(self, evidence: LinkEvidence, now: float) -> bool:
        """No fresh report shows the link still congested (loss or a queue)."""
        if evidence.queue_s is not None and evidence.queue_s > self._config.probe_queue_s:
            return False
        fresh = evidence.reported_at is not None and (
            now - evidence.reported_at <= self._config.evidence_max_age_s
        )
        return not fresh or evidence.fraction_lost < self._config.probe_max_loss

    def _judge_probe(
        self,
        video_room_kbps: float,
        floor_kbps: float,
        now: float,
        evidence: LinkEvidence,
        sent_kbit: float | None,
    ) -> GateState | None:
        config = self._config
        started = self._changed_at
        elapsed = now - started
        audio_hurt = (
            evidence.audio_at is not None
            and evidence.audio_at > started
            and (evidence.audio_lost or 0.0) > config.probe_max_loss
        )
        reported = evidence.reported_at is not None and evidence.reported_at > started
        hurt = reported and (
            evidence.fraction_lost >= config.probe_fail_loss
            or (evidence.queue_s is not None and evidence.queue_s > config.probe_queue_s)
        )
        if audio_hurt or hurt or elapsed >= config.probe_max_s:
            self._backoff_s = self._longer_backoff()
            return self._enter(GateState.PAUSED, now)
        judged = evidence.reported_at is not None and (
            evidence.reported_at >= started + config.probe_confirm_s - 1.0
        )
        # A probe that has hardly sent (the publisher's keyframe still awaited, frames dropped
        # at the pacer) has not tested the link, whatever the reports say.
        tested = sent_kbit is None or sent_kbit >= config.video_min_kbps * config.probe_sent_min_s
        if (
            elapsed >= config.probe_confirm_s
            and judged
            and tested
            and video_room_kbps >= floor_kbps
        ):
            self._resumed_at = now
            return self._enter(GateState.FLOWING, now)
        return None

    def _longer_backoff(self) -> float:
        return min(2 * self._backoff_s, self._config.probe_backoff_max_s)

    def _enter(self, state: GateState, now: float) -> GateState:
        self.state = state
        self._changed_at = now
        self._low_since = None
        return state

    @property
    def probe_kbps(self) -> float:
        """The rate a probe sends video at (with its overhead): a little above the lowest."""
        config = self._config
        return config.video_min_kbps * (1.0 + config.video_overhead) * config.probe_rate_factor
