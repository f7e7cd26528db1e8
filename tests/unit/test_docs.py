"""Docs are tested against the tree: every relative link in README.md and docs/ resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
