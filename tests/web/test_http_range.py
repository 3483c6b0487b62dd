"""``Range`` resolution per RFC 9110 §14 (pure function; the download route uses it)."""

from __future__ import annotations

import pytest

from web.http_range import MAX_RANGES, ByteRange, RangeNotSatisfiable, resolve_range

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 10)),
        ("bytes=990-", (990, 1000)),
        ("bytes=990-5000", (990, 1000)),
        ("bytes=-100", (900, 1000)),
        ("bytes=-5000", (0, 1000)),
        ("bytes=999-999", (999, 1000)),
        ("BYTES = 5-6", (5, 7)),
        ("bytes=0-9, 20-29", (0, 30)),
        ("bytes=500-, 0-0", (0, 1000)),
        ("bytes=0-9, 5000-", (0, 10)),
        ("bytes=0-9,,", (0, 10)),
    ],
)
def test_satisfiable_ranges(header: str, expected: tuple[int, int]) -> None:
    wanted = resolve_range(header, SIZE)
    assert wanted == ByteRange(*expected, SIZE)
    assert wanted.content_range == f"bytes {expected[0]}-{expected[1] - 1}/{SIZE}"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=",
        "bytes=a-",
        "bytes=5-2",
        "bytes=--5",
        "bytes=1-2-3",
        "bytes=0x10-",
        "items=0-9",
        "bytes=" + ",".join(["0-1"] * (MAX_RANGES + 1)),
    ],
)
def test_invalid_or_foreign_ranges_are_ignored(header: str | None) -> None:
    assert resolve_range(header, SIZE) is None


@pytest.mark.parametrize(
    "header", ["bytes=-0", "bytes=1000-", "bytes=5000-6000", "bytes=-0, 1000-"]
)
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as raised:
        resolve_range(header, SIZE)
    assert raised.value.content_range == f"bytes */{SIZE}"


@pytest.mark.parametrize("header", ["bytes=0-", "bytes=-1"])
def test_nothing_is_satisfiable_in_an_empty_file(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        resolve_range(header, 0)
