"""The batch ledger: entries round-trip, receipts are kept, purges fold into marks, and a damaged
entry is reported as damaged (never a crash, never a guessed batch)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.delivery.ledger import Ledger, LedgerEntry, Purged


def entry(sequence: int, **max_seq: int) -> LedgerEntry:
    return LedgerEntry(sequence, f"edge-1-{sequence:010d}.ccb", "2026-03-02T09:00:00Z",
                       "ab" * 32, (f"r{sequence}a", f"r{sequence}b"), max_seq or {"pbx-1": sequence * 10})  # fmt: skip


def test_entries_round_trip_owner_only_and_in_order(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    for sequence in (3, 1, 2):
        ledger.write(entry(sequence))
    assert ledger.entries() == ([entry(1), entry(2), entry(3)], [])
    assert (
        stat.S_IMODE(os.stat(tmp_path / "ledger" / "edge-1-0000000001.ccb.json").st_mode) == 0o600
    )


def test_forget_folds_marks_and_drops_entries_and_receipts(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    for e in (entry(1, **{"pbx-1": 10, "pbx-2": 4}), entry(2, **{"pbx-1": 20}), entry(3)):
        ledger.write(e)
    ledger.acknowledge(entry(1).file_name, b"receipt one")
    ledger.acknowledge("edge-1-0000000099.ccb", b"not ours")  # no entry: nothing kept
    assert ledger.receipt(entry(1).file_name) == b"receipt one"
    assert ledger.receipt("edge-1-0000000099.ccb") is None
    ledger.forget([entry(1).file_name, entry(2).file_name])
    assert ledger.purged() == Purged(2, {"pbx-1": 20, "pbx-2": 4})
    assert ledger.entries() == ([entry(3)], [])
    assert ledger.receipt(entry(1).file_name) is None


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), cut=st.integers(min_value=0, max_value=400))
def test_a_damaged_entry_is_reported_not_guessed(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, cut: int
) -> None:
    ledger = Ledger(tmp_path_factory.mktemp("state"))
    ledger.write(entry(1))
    good = entry(2).to_json()
    damaged = good[:cut] + data if cut < len(good) else data
    (ledger.directory / entry(2).file_name).with_suffix(".ccb.json").write_bytes(damaged)
    entries, bad = ledger.entries()
    assert entries[0] == entry(1)
    if damaged == good:
        assert entries == [entry(1), entry(2)] and bad == []
    else:
        assert entry(2) not in entries or damaged.strip() == good  # whitespace is still JSON
        assert len(entries) + len(bad) == 2
