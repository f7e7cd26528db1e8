"""The batch ledger: which records each batch holds, kept outside ``spool.db`` for a rebuild.

A damaged spool is rebuilt from the journal (``edge_agent.rebuild``); the journal says what was
read but not which records already left in which batch. The ledger does, so a rebuild neither
re-sends an acknowledged record in a new batch nor gives a batch number twice.

Contract:

- ``write(entry)`` (the batcher, inside the transaction that seals the batch, before the batch
  file exists) stores ``STATE/ledger/NAME.json``: sequence, file name, creation time, content
  SHA-256, record ids, and per source the highest journal sequence in the batch. Atomic, 0600.
- ``acknowledge(name, receipt)`` (the receipt inbox, after the spool recorded it) keeps the
  verified receipt as ``STATE/ledger/NAME.ack``: a rebuild restores that batch as acknowledged
  (its records are at the data centre) instead of waiting for a receipt that was consumed.
- ``forget(names)`` (retention, after purging acknowledged batches) deletes their entries and
  folds their per-source highest journal sequences and batch number into ``purged.json``.
  Records are sealed in arrival order and arrive in journal order per source, so every record
  of a source at or below that mark was in a purged batch or in one whose entry still exists.
- ``entries()`` and ``purged()`` read them back; a damaged entry is reported, not guessed at.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.durable import atomic_write, fsync_dir
from shared.modes import FILE_MODE, make_private_dir

log = logging.getLogger(__name__)

LEDGER_DIR = "ledger"
PURGED_FILE = "purged.json"
SUFFIX = ".json"
ACK_SUFFIX = ".ack"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    sequence: int
    file_name: str
    created: str
    content_sha256: str
    record_ids: tuple[str, ...]
    max_seq: dict[str, int]  # source id -> highest journal sequence of its records here

    def to_json(self) -> bytes:
        return json.dumps({"sequence": self.sequence, "file_name": self.file_name,
                           "created": self.created, "content_sha256": self.content_sha256,
                           "record_ids": list(self.record_ids), "max_seq": self.max_seq},
                          sort_keys=True).encode()  # fmt: skip

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LedgerEntry:
        return cls(int(raw["sequence"]), str(raw["file_name"]), str(raw["created"]),
                   str(raw["content_sha256"]), tuple(map(str, raw["record_ids"])),
                   {str(k): int(v) for k, v in raw["max_seq"].items()})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Purged:
    """What retention deleted: the highest batch number and per-source journal marks."""

    through_batch: int = 0
    max_seq: dict[str, int] = field(default_factory=dict)


class Ledger:
    """``STATE/ledger/`` (see the module docstring)."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / LEDGER_DIR
        make_private_dir(self.directory)

    def write(self, entry: LedgerEntry) -> None:
        atomic_write(self.directory / (entry.file_name + SUFFIX), entry.to_json(), mode=FILE_MODE)

    def acknowledge(self, file_name: str, receipt: bytes) -> None:
        if (self.directory / (file_name + SUFFIX)).exists():
            atomic_write(self.directory / (file_name + ACK_SUFFIX), receipt, mode=FILE_MODE)

    def receipt(self, file_name: str) -> bytes | None:
        """The verified receipt kept for a batch, or None."""
        try:
            return (self.directory / (file_name + ACK_SUFFIX)).read_bytes()
        except FileNotFoundError:
            return None

    def forget(self, file_names: Iterable[str]) -> None:
        purged = self.purged()
        through, marks = purged.through_batch, dict(purged.max_seq)
        paths: list[Path] = []
        for name in file_names:
            path = self.directory / (name + SUFFIX)
            entry = self._read(path)
            if entry is None:
                continue
            through = max(through, entry.sequence)
            for source, seq in entry.max_seq.items():
                marks[source] = max(marks.get(source, 0), seq)
            paths.append(path)
        if not paths:
            return
        record = {"through_batch": through, "max_seq": marks}
        atomic_write(self.directory / PURGED_FILE, json.dumps(record, sort_keys=True).encode(),
                     mode=FILE_MODE)  # fmt: skip
        for path in paths:  # after the marks are durable: a crash between leaves extra entries
            path.unlink(missing_ok=True)
            path.with_suffix(ACK_SUFFIX).unlink(missing_ok=True)
        fsync_dir(self.directory)

    def purged(self) -> Purged:
        path = self.directory / PURGED_FILE
        if not path.exists():
            return Purged()
        raw = json.loads(path.read_bytes())
        return Purged(
            int(raw["through_batch"]), {str(k): int(v) for k, v in raw["max_seq"].items()}
        )

    def entries(self) -> tuple[list[LedgerEntry], list[str]]:
        """Every readable entry by sequence, and the names of damaged ones."""
        good: list[LedgerEntry] = []
        bad: list[str] = []
        for path in sorted(self.directory.glob("*" + SUFFIX)):
            if path.name == PURGED_FILE:
                continue
            entry = self._read(path)
            if entry is None:
                bad.append(path.name)
            else:
                good.append(entry)
        return sorted(good, key=lambda e: e.sequence), bad

    @staticmethod
    def _read(path: Path) -> LedgerEntry | None:
        try:
            return LedgerEntry.from_json(json.loads(path.read_bytes()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("batch ledger %s is damaged: %s", path.name, exc)
            return None
