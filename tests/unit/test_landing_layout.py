"""Landing account names and the receipts the data centre prunes from the agents' accounts."""

from __future__ import annotations

import os
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from datacenter.landing.layout import (
    MAX_ACCOUNT,
    RECEIPTS,
    account_name,
    is_account,
    prune_receipts,
)

AGENT_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True)
SLUGS = st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True)


@given(SLUGS, AGENT_IDS)
def test_an_account_name_is_a_short_valid_user_name_never_a_slug(slug: str, agent_id: str) -> None:
    name = account_name(slug, agent_id)
    assert len(name) <= MAX_ACCOUNT and is_account(name)
    assert "_" in name  # tenant slugs never have one: no clash with a tenant folder
    assert name == account_name(slug, agent_id)


def test_the_same_agent_id_in_two_tenants_gets_two_accounts() -> None:
    assert account_name("acme", "edge-1") != account_name("beta", "edge-1")
    assert account_name("acme", "edge-1").startswith("cc_edge-1_")


def test_old_receipts_are_pruned_and_links_are_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "cc_a_000000" / RECEIPTS
    folder.mkdir(parents=True)
    old, fresh = folder / "old.receipt", folder / "fresh.receipt"
    old.write_text("x")
    fresh.write_text("y")
    outside = tmp_path / "outside"
    outside.write_text("keep")
    (folder / "link.receipt").symlink_to(outside)
    past = time.time() - 8 * 86_400
    for path in (old, outside):
        os.utime(path, (past, past))
    pruned = prune_receipts(tmp_path, ["cc_a_000000", "cc_missing_000000"],
                            before=time.time() - 7 * 86_400)  # fmt: skip
    assert pruned == 1
    assert sorted(p.name for p in folder.iterdir()) == ["fresh.receipt", "link.receipt"]
    assert outside.read_text() == "keep"
