"""Round-trip time from receiver reports: LSR matched to the sender report it echoes."""

from __future__ import annotations

import pytest

from media.rtt import RoundTripMeter, compact_ntp

NTP_SECOND = 1 << 32


def _ntp(seconds: float) -> int:
    return int(seconds * NTP_SECOND)


def test_rtt_is_the_time_since_the_echoed_report_less_the_receivers_delay() -> None:
    meter = RoundTripMeter()
    meter.on_sender_report(_ntp(1000.0), now=5.0)
    lsr = compact_ntp(_ntp(1000.0))
    assert meter.on_receiver_report(lsr, dlsr=int(0.25 * 65536), now=5.4) == pytest.approx(
        0.15, abs=1e-4
    )
    assert meter.rtt_s == pytest.approx(0.15, abs=1e-4)


def test_the_compact_ntp_wraps_modulo_2_to_the_32() -> None:
    ntp = (0xFFFF << 48) | (0xFFFF_FFFF << 16)  # era end: the middle 32 bits all ones
    assert compact_ntp(ntp) == 0xFFFF_FFFF
    meter = RoundTripMeter()
    meter.on_sender_report(ntp, now=1.0)
    assert meter.on_receiver_report(0xFFFF_FFFF, dlsr=0x8000, now=1.6) == pytest.approx(0.1)


def test_reports_that_cannot_give_a_true_rtt_are_discarded() -> None:
    meter = RoundTripMeter()
    meter.on_sender_report(_ntp(10.0), now=1.0)
    lsr = compact_ntp(_ntp(10.0))
    assert meter.on_receiver_report(0, dlsr=0, now=1.2) is None  # no sender report received
    assert meter.on_receiver_report(lsr + 1, dlsr=0, now=1.2) is None  # not one we sent
    # Its delay longer than the time since we sent it: a clock or report error, not an RTT.
    assert meter.on_receiver_report(lsr, dlsr=int(0.5 * 65536), now=1.2) is None
    assert meter.on_receiver_report(lsr, dlsr=0, now=12.0) is None  # absurdly long
    assert meter.rtt_s is None


def test_an_lsr_sent_twice_by_an_idle_stream_is_ambiguous_and_ignored() -> None:
    # A paused stream's sender reports all carry the NTP time of its last packet. The receiver
    # got the first copy (sent at 1.0) and counts its delay from it; measured from the second
    # copy (sent at 2.0) the RTT would read 0.1 - 1.0 = -0.9 s.
    meter = RoundTripMeter()
    meter.on_sender_report(_ntp(50.0), now=1.0)
    meter.on_sender_report(_ntp(50.0), now=2.0)
    lsr = compact_ntp(_ntp(50.0))
    assert meter.on_receiver_report(lsr, dlsr=int(1.0 * 65536), now=2.1) is None
    meter.on_sender_report(_ntp(51.0), now=3.0)  # the stream sends again
    rtt = meter.on_receiver_report(compact_ntp(_ntp(51.0)), dlsr=int(0.02 * 65536), now=3.1)
    assert rtt == pytest.approx(0.08, abs=1e-4)
    assert meter.rtt_s is not None and meter.rtt_s > 0


def test_only_recent_sender_reports_are_remembered() -> None:
    meter = RoundTripMeter()
    for second in range(40):
        meter.on_sender_report(_ntp(100.0 + second), now=float(second))
    assert meter.on_receiver_report(compact_ntp(_ntp(100.0)), dlsr=0, now=40.0) is None
    assert meter.on_receiver_report(compact_ntp(_ntp(139.0)), dlsr=0, now=39.05) == pytest.approx(
        0.05
    )
