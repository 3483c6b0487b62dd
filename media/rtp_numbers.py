"""Modular arithmetic on RTP sequence numbers (16 bits) and timestamps (32 bits), RFC 3550.

Both wrap around; "newer" and "difference" are taken over the shorter way round the circle.
"""

from __future__ import annotations

SEQ_MODULUS = 1 << 16
SEQ_HALF = SEQ_MODULUS // 2
TIMESTAMP_MODULUS = 1 << 32
TIMESTAMP_HALF = TIMESTAMP_MODULUS // 2


def seq_add(sequence: int, delta: int) -> int:
    """``sequence + delta`` wrapped to 16 bits (``delta`` may be negative)."""
    return (sequence + delta) % SEQ_MODULUS


def seq_diff(a: int, b: int) -> int:
    """``a - b`` as a signed distance in ``[-32768, 32767]``: positive when ``a`` is newer."""
    return (a - b + SEQ_HALF) % SEQ_MODULUS - SEQ_HALF


def timestamp_add(timestamp: int, delta: int) -> int:
    """``timestamp + delta`` wrapped to 32 bits (``delta`` may be negative)."""
    return (timestamp + delta) % TIMESTAMP_MODULUS


def timestamp_diff(a: int, b: int) -> int:
    """``a - b`` as a signed 32-bit distance: positive when ``a`` is later."""
    return (a - b + TIMESTAMP_HALF) % TIMESTAMP_MODULUS - TIMESTAMP_HALF
