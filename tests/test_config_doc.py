"""docs/configuration.md is what scripts/config_doc.py makes from the schema, and names every key.

Read-only (no files written, no MPI calls), so it runs the same serially and on every rank
under mpirun."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

from app import config as C

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "configuration.md"


def _generator():
    spec = importlib.util.spec_from_file_location("config_doc", ROOT / "scripts" / "config_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _every_key():
    for section, field in C.Config.model_fields.items():
        for key, sub in field.annotation.model_fields.items():
            yield f"{section}.{key}", sub.get_default(call_default_factory=True)


def test_page_is_current():
    expected = _generator().render()
    current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
    assert current == expected, (
        "docs/configuration.md is stale (the schema in app/config.py changed, or the page was "
        "edited by hand); regenerate it with: python3 scripts/config_doc.py"
    )


def test_every_key_is_on_the_page_with_its_default():
    page = PAGE.read_text(encoding="utf-8")
    keys = list(_every_key())
    assert len(keys) >= 50
    for key, default in keys:
        row = re.search(rf"^\| `{re.escape(key)}` \| ([^|]*) \|", page, re.MULTILINE)
        assert row, f"docs/configuration.md has no row for {key}; run: python3 scripts/config_doc.py"
        shown = row.group(1).strip()
        if default is None:
            assert shown.startswith("unset"), f"{key}: default shown as {shown!r}, expected unset"
            continue
        literal = re.match(r"`([^`]*)`", shown)
        assert literal, f"{key}: no default literal in {shown!r}"
        value = tomllib.loads(f"v = {literal.group(1)}")["v"]
        assert value == default and type(value) is type(default), f"{key}: page says {value!r}, schema {default!r}"


def test_units_come_from_the_descriptions():
    doc = _generator()
    assert doc.unit_and_meaning("lattice spacing, nm") == ("nm", "lattice spacing")
    assert doc.unit_and_meaning("element size within fine_radius, nm (3 in 3D unless given)") == (
        "nm",
        "element size within fine_radius (3 in 3D unless given)",
    )
    assert doc.unit_and_meaning("electron spin s: +1/2 for (1,1), 0 for the singlet") == (
        "",
        "electron spin s: +1/2 for (1,1), 0 for the singlet",
    )
    assert doc.unit_and_meaning("flip-flop cutoff radius, in units of a0") == ("a0", "flip-flop cutoff radius")
