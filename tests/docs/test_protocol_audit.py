"""docs/protocol.md documents every audit action the server writes, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from rooms.audit import AuditAction

PROTOCOL = Path(__file__).parents[2] / "docs" / "protocol.md"


def documented_actions() -> list[str]:
    """Action names in the first column of the table under ``### Audit actions``."""
    section = PROTOCOL.read_text().split("### Audit actions", 1)[1].split("\n#", 1)[0]
    names: list[str] = []
    for line in section.splitlines():
        if line.startswith("| `"):
            names += re.findall(r"`([a-z_]+)`", line.split(" | ")[0])
    return names


def test_every_audit_action_is_documented_once_and_nothing_else() -> None:
    documented = documented_actions()
    assert len(documented) == len(set(documented)), "an action is listed twice"
    assert sorted(documented) == sorted(action.value for action in AuditAction)
