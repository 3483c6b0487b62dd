"""Payload models of the care events against the codes the records hand out."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from records.codes import new_code, normalise_code
from signaling.care_messages import LookupPatientMessage


def test_every_card_code_handed_out_can_be_looked_up_as_typed() -> None:
    for _ in range(500):
        code = new_code(7)
        assert normalise_code(code) == code
        for typed in (code, code.lower(), code.replace("-", " ")):
            assert LookupPatientMessage.model_validate({"card_code": typed}).card_code == typed


def test_a_card_code_is_only_code_characters() -> None:
    for bad in ("ABCD<EFG", "ABCD/EFGH", "AB\nCDEFG", "ABCD-EFG*"):
        with pytest.raises(ValidationError):
            LookupPatientMessage.model_validate({"card_code": bad})
