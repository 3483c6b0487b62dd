"""Codes people type: Crockford base-32 (no I, L, O, U) with a mod-37 check character."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CHECK = _ALPHABET + "*~$=U"
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code(length: int) -> str:
    """``length`` random characters and a check character, grouped by four with a dash."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(length))
    return _grouped(body + _check_character(body))


def normalise_code(text: str) -> str | None:
    """The canonical form of a typed code (case, dashes, spaces, O/I/L read as 0/1), or
    ``None`` when its check character does not match (a typo)."""
    raw = text.upper().replace("-", "").replace(" ", "").translate(_READ_AS)
    if len(raw) < 2 or any(c not in _ALPHABET for c in raw[:-1]) or raw[-1] not in _CHECK:
        return None
    body, check = raw[:-1], raw[-1]
    return _grouped(raw) if _check_character(body) == check else None


def _check_character(body: str) -> str:
    value = 0
    for char in body:
        value = value * 32 + _ALPHABET.index(char)
    return _CHECK[value % 37]


def _grouped(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))
