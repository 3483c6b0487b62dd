"""Codes people type: Crockford's base-32 letters (no I, L, O, U) with a Luhn mod 32 check
character, which catches every single mistyped character and most swapped neighbours."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BASE = len(_ALPHABET)
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code(length: int) -> str:
    """``length`` random characters and a check character, grouped by four with a dash."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(length))
    return _grouped(body + _check_character(body))


def normalise_code(text: str) -> str | None:
    """The canonical form of a typed code (case, dashes, spaces, O/I/L read as 0/1), or
    ``None`` when a character is not in the alphabet or the check character does not match."""
    raw = text.upper().replace("-", "").replace(" ", "").translate(_READ_AS)
    if len(raw) < 2 or any(c not in _ALPHABET for c in raw):
        return None
    return _grouped(raw) if _check_character(raw[:-1]) == raw[-1] else None


def _check_character(body: str) -> str:
    """Luhn mod N: double every other value from the right, fold, and complete to a multiple."""
    total = 0
    for position, char in enumerate(reversed(body)):
        value = _ALPHABET.index(char)
        if position % 2 == 0:
            value *= 2
            value = value // _BASE + value % _BASE
        total += value
    return _ALPHABET[(_BASE - total % _BASE) % _BASE]


def _grouped(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))
