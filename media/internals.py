"""Checks that the aiortc/aioice internals the relay relies on are still in the installed code.

The modules that reach into private code (:mod:`media.forwarding`, :mod:`media.fast_transport`)
name the lines they depend on; a tripwire test fails loudly when an upgrade moves one.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any


def missing_lines(where: Any, lines: Iterable[str]) -> list[str]:
    """Those of ``lines`` that the source of ``where`` (a class or function) lacks, each
    reported as ``Qualified.name: line``."""
    source = inspect.getsource(where)
    return [f"{where.__qualname__}: {line}" for line in lines if line not in source]
