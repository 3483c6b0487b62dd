"""The ``Range`` request header resolved against a representation's size, per RFC 9110 §14.

* No header, another unit, or invalid syntax (``bytes=5-2``, ``bytes=a-``, ``bytes=``): the header
  is ignored and the whole representation is sent (``200``).
* ``bytes=first-last``, ``bytes=first-`` and ``bytes=-suffix``: the satisfiable part, clipped to
  the size (``206`` with ``Content-Range: bytes first-last/size``).
* Nothing satisfiable (``first`` at or past the end, ``bytes=-0``, any range of an empty
  representation): ``416`` with ``Content-Range: bytes */size``.
* Several ranges: the satisfiable ones are coalesced into the one range that covers them all
  (§14.2 lets a server coalesce); more than :data:`MAX_RANGES` ranges are ignored (``200``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_RANGES = 16
_SPEC = re.compile(r"^(?:(\d+)-(\d*)|-(\d+))$")


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` up to (not including) ``end`` of a representation of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


class RangeNotSatisfiable(Exception):
    """No requested range overlaps the representation: answer ``416``."""

    def __init__(self, size: int) -> None:
        super().__init__(f"no requested range is satisfiable for {size} bytes")
        self.size = size

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


def resolve_range(header: str | None, size: int) -> ByteRange | None:
    """The range to send, ``None`` for the whole representation; raise
    :class:`RangeNotSatisfiable` when ranges were asked for validly but none fits."""
    specs = _parse(header)
    if specs is None:
        return None
    satisfiable = [r for r in (_clip(first, last, size) for first, last in specs) if r]
    if not satisfiable:
        raise RangeNotSatisfiable(size)
    start = min(r[0] for r in satisfiable)
    end = max(r[1] for r in satisfiable)
    return ByteRange(start, end, size)


def _parse(header: str | None) -> list[tuple[int | None, int | None]] | None:
    """``(first, last)`` pairs (``(None, n)`` for a suffix), or ``None`` to ignore the header."""
    if header is None:
        return None
    unit, _, ranges = header.strip().partition("=")
    if unit.strip().lower() != "bytes":
        return None
    parts = [part.strip() for part in ranges.split(",")]
    parts = [part for part in parts if part]  # RFC 9110 list syntax allows empty elements
    if not parts or len(parts) > MAX_RANGES:
        return None
    specs: list[tuple[int | None, int | None]] = []
    for part in parts:
        match = _SPEC.match(part)
        if match is None:
            return None
        first, last, suffix = match.groups()
        if suffix is not None:
            specs.append((None, int(suffix)))
            continue
        if last and int(last) < int(first):
            return None
        specs.append((int(first), int(last) if last else None))
    return specs


def _clip(first: int | None, last: int | None, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of one spec within ``size`` bytes, ``None`` when it is unsatisfiable."""
    if first is None:  # suffix: the last ``last`` bytes
        suffix = last or 0
        if suffix == 0 or size == 0:
            return None
        return max(0, size - suffix), size
    if first >= size:
        return None
    end = size if last is None else min(last + 1, size)
    return first, end
