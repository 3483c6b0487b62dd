"""The README's configuration table against :class:`Settings`: every setting the server reads
is documented with its environment variable and its default, and nothing else is."""

from __future__ import annotations

import re
from pathlib import Path

from web.settings import ENV_PREFIX, Settings, setting_names

README = Path(__file__).parents[2] / "README.md"


def configuration_table() -> dict[str, list[str]]:
    """Rows of the table under ``## Configuration``, by setting name."""
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and cells[0] not in ("setting", "---"):
            assert cells[0] not in rows, f"{cells[0]} is listed twice"
            rows[cells[0]] = cells
    return rows


def shown(value: object) -> str:
    """A default as the README writes it (``30``, not ``30.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_every_setting_is_in_the_readme_table_and_nothing_else() -> None:
    assert sorted(configuration_table()) == sorted(setting_names())


def test_each_row_names_the_environment_variable_the_server_reads() -> None:
    wrong = {
        name: cells[2]
        for name, cells in configuration_table().items()
        if not cells[2].startswith(f"`{ENV_PREFIX}{name.upper()}`")
    }
    assert wrong == {}


def test_a_default_written_as_a_value_is_the_settings_default() -> None:
    defaults = Settings()
    literals = {
        name: match.group(1)
        for name, cells in configuration_table().items()
        if (match := re.fullmatch(r"`([^`]+)`", cells[3]))
    }
    assert len(literals) > 20, "the table's defaults are mostly plain values"
    wrong = {
        name: (written, shown(getattr(defaults, name)))
        for name, written in literals.items()
        if written != shown(getattr(defaults, name))
    }
    assert wrong == {}
