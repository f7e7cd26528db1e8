"""Docs are tested against the tree: every relative link in README.md and docs/ resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.icdr import ENUMS, FIELDS, FieldInfo

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)#\s]+)")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = [
        target for target in LINK.findall(page.read_text()) if not (page.parent / target).exists()
    ]
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_readme_starts_with_the_two_commands() -> None:
    """The newcomer's two commands stand near the top of the README, and CI runs the second."""
    head = (ROOT / "README.md").read_text()[:2500]
    assert "bash scripts/demo.sh" in head
    assert "bash scripts/test.sh" in head
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci


def _type_phrase(each: FieldInfo) -> str:
    """How docs/icdr.md's Type column names a declared field's kind."""
    enum = ENUMS.get(each.kind)
    phrase = (
        " / ".join(f"`{member.value}`" for member in enum)
        if enum is not None
        else {
            "str": "string",
            "int": "integer",
            "bool": "boolean",
            "time": "time",
            "time?": "time or null",
            "strs": "list of strings",
            "strmap": "object of strings",
        }[each.kind]
    )
    return f"{phrase}, required" if each.required else phrase


def test_the_icdr_reference_lists_the_declared_fields_in_order() -> None:
    """docs/icdr.md's field tables are the declaration: names, types and meanings, in order."""
    page = (ROOT / "docs" / "icdr.md").read_text()
    documented = re.findall(r"^\| `(\w+)` \| (.+?) \| (.+) \|$", page, re.MULTILINE)
    declared = [(each.name, _type_phrase(each), each.spec.doc) for each in FIELDS]
    assert [row[0] for row in documented] == [row[0] for row in declared]
    for row, expected in zip(documented, declared, strict=True):
        assert row == expected, f"docs/icdr.md's row for {row[0]} differs from shared/icdr.py"
