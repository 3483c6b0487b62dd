"""The aiortc/aioice internals the relay relies on are still there (fails loudly on upgrade)."""

from __future__ import annotations

import aioice
import aiortc

from media import forwarding, ice


def test_pinned_aiortc_version_is_the_tested_one() -> None:
    assert aiortc.__version__.startswith(forwarding.AIORTC_TESTED + "."), (
        f"media/forwarding.py was written for aiortc {forwarding.AIORTC_TESTED}.x, found "
        f"{aiortc.__version__}: re-check every internal it names, then update AIORTC_TESTED"
    )
    assert aioice.__version__.startswith("0.13")


def test_aiortc_internals_are_present() -> None:
    assert forwarding.check_internals() == []


def test_aioice_internals_are_present() -> None:
    assert ice.check_internals() == []
