"""Payload models of the care events against the codes the records hand out."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from records.codes import _CHECK, new_code, normalise_code
from signaling.care_messages import LookupPatientMessage


@pytest.mark.parametrize("check", list(_CHECK))
def test_a_card_code_with_any_check_character_can_be_looked_up(check: str) -> None:
    for _ in range(2000):
        code = new_code(7)
        if code.endswith(check):
            break
    else:
        pytest.fail(f"no card code ending in {check!r} in 2000 tries")
    assert normalise_code(code) == code
    assert LookupPatientMessage.model_validate({"card_code": code}).card_code == code


def test_a_card_code_is_only_code_characters() -> None:
    for bad in ("ABCD<EFG", "ABCD/EFGH", "AB\nCDEFG"):
        with pytest.raises(ValidationError):
            LookupPatientMessage.model_validate({"card_code": bad})
