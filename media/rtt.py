"""Round-trip time of one outgoing RTP stream from the receiver reports' LSR and DLSR (RFC 3550).

aiortc's sender stamps a sender report with the NTP time of the last RTP packet *sent*, not of
the report itself, so while a stream is idle (paused video) every report carries the same LSR.
A receiver report then names an LSR sent several times, its DLSR counts from whichever copy
arrived last, and aiortc's ``now - last copy sent - DLSR`` comes out negative (down to minus a
second on a starved link), which its smoothing then carries on. This meter keeps the send time
of each recent sender report by LSR and only accepts reports that name exactly one of them.
"""

from __future__ import annotations

from collections import OrderedDict

NTP_SHORT_UNITS = 65536.0  # LSR and DLSR count 1/65536 s (the middle 32 bits of NTP time)
MAX_RTT_S = 10.0
SMOOTHING = 0.85
_REMEMBERED_REPORTS = 16


def compact_ntp(ntp_timestamp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp: what a receiver echoes back as LSR."""
    return (ntp_timestamp >> 16) & 0xFFFFFFFF


class RoundTripMeter:
    """Sender reports sent (LSR → send time) and the smoothed RTT their echoes give."""

    def __init__(self) -> None:
        self._sent: OrderedDict[int, float | None] = OrderedDict()
        self.rtt_s: float | None = None
        self.last_rtt_s: float | None = None

    def on_sender_report(self, ntp_timestamp: int, now: float) -> None:
        """A sender report left at ``now`` (seconds) carrying ``ntp_timestamp``."""
        lsr = compact_ntp(ntp_timestamp)
        # The same LSR sent again: a report echoing it cannot say which copy it counts from.
        self._sent[lsr] = None if lsr in self._sent else now
        self._sent.move_to_end(lsr)
        while len(self._sent) > _REMEMBERED_REPORTS:
            self._sent.popitem(last=False)

    def on_receiver_report(self, lsr: int, dlsr: int, now: float) -> float | None:
        """The RTT a report block gives (seconds), ``None`` when it gives none worth using.

        Discarded: no sender report received yet (LSR 0), an LSR not sent or sent more than
        once, and a result that is negative or above :data:`MAX_RTT_S`.
        """
        sent_at = self._sent.get(lsr & 0xFFFFFFFF) if lsr else None
        if sent_at is None:
            return None
        rtt = now - sent_at - (dlsr & 0xFFFFFFFF) / NTP_SHORT_UNITS
        if not 0.0 <= rtt <= MAX_RTT_S:
            return None
        self.last_rtt_s = rtt
        self.rtt_s = rtt if self.rtt_s is None else SMOOTHING * self.rtt_s + (1 - SMOOTHING) * rtt
        return rtt
