"""Card and share codes: typed by hand, so a typo is caught by the check character."""

from __future__ import annotations

from records.codes import new_code, normalise_code

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def test_a_new_code_reads_back_however_it_is_typed() -> None:
    for _ in range(200):
        code = new_code(7)
        assert len(code) == 9 and code[4] == "-"
        assert normalise_code(code) == code
        assert normalise_code(code.lower().replace("-", " ")) == code


def test_every_single_mistyped_character_and_swapped_neighbours_are_caught() -> None:
    swaps_caught = swaps = 0
    for _ in range(50):
        raw = new_code(7).replace("-", "")
        for at in range(len(raw)):
            for typo in ALPHABET.replace(raw[at], ""):
                assert normalise_code(raw[:at] + typo + raw[at + 1 :]) is None
        for at in range(len(raw) - 1):
            if raw[at] != raw[at + 1]:
                swapped = raw[:at] + raw[at + 1] + raw[at] + raw[at + 2 :]
                swaps += 1
                swaps_caught += normalise_code(swapped) is None
    assert swaps_caught / swaps > 0.95


def test_letters_people_confuse_are_read_as_digits() -> None:
    code = new_code(7).replace("-", "")
    confusable = code.replace("0", "O").replace("1", "I")
    assert normalise_code(confusable) == normalise_code(code)
    assert normalise_code("ABC*") is None and normalise_code("") is None
