"""README's settings reference (section "Settings") against `teamsvoice.settings.Settings`: every setting is
listed, every variable listed exists, and a default written as literals is the one the code has. A provider
tunes a deployment from that table; a default changed in the code and not there misleads them."""

import json
import re
from pathlib import Path

from teamsvoice.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
PREFIX = "TEAMSVOICE_"


def _table() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n### Settings\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `TEAMSVOICE_")]
    assert rows, "README's Settings section has no table of TEAMSVOICE_ variables"
    return [[cell.strip() for cell in row.strip().strip("|").split(" | ")] for row in rows]


def _names(cell: str, fields: set[str]) -> list[str]:
    """`TEAMSVOICE_A_B_C` / `_D` names A_B_D or A_D (the longest head of the first name that makes a setting)."""
    first, *others = re.findall(r"`([A-Z_0-9]+)`", cell)
    names = [first.removeprefix(PREFIX).lower()]
    for suffix in others:
        head = names[0].split("_")
        for cut in range(len(head) - 1, -1, -1):
            candidate = "_".join(head[:cut] + [suffix.strip("_").lower()]) if cut else suffix.strip("_").lower()
            if candidate in fields:
                names.append(candidate)
                break
        else:
            names.append(f"<no setting for {suffix} after {first}>")
    return names


def _literal(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def test_the_readme_lists_every_setting_with_its_default() -> None:
    fields = Settings.model_fields
    listed: dict[str, str] = {}
    for cell, default, *_ in _table():
        names = _names(cell, set(fields))
        values = [v.strip() for v in default.split(" / ")]
        literal = all(re.fullmatch(r"`[^`]*`", v) for v in values) and len(values) == len(names)
        for index, name in enumerate(names):
            assert name in fields, f"README lists {cell}, which is no setting ({name})"
            listed[name] = default
            if not literal:
                continue  # described in words ("unset: ...", "generated ...")
            written = _literal(values[index].strip("`"))
            actual = fields[name].get_default(call_default_factory=True)
            if actual is None:
                continue  # decided at start (the data directory's database, the emulator's CA): the README says how
            if isinstance(actual, bool) or isinstance(written, bool):
                assert written == actual, f"{name}: README says {written!r}, the code {actual!r}"
            elif isinstance(actual, (int, float)) and isinstance(written, (int, float)):
                assert float(written) == float(actual), f"{name}: README says {written}, the code {actual}"
            else:
                assert written == actual or str(written) == str(actual), f"{name}: README says {written!r}, the code {actual!r}"
    missing = sorted(set(fields) - set(listed))
    assert missing == [], f"settings missing from README's table: {missing}"
