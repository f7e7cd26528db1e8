"""Named crash points: a real ``SIGKILL`` at a chosen step of a write path, for fault tests.

Contract:

- ``crash_point(name)`` does nothing unless the process was started with
  ``CALLCOLLECT_CRASH_AT=NAME:N`` (``CRASH_ENV``); then the N-th time the process passes the
  point called NAME it sends itself ``SIGKILL``: no handler runs, nothing is flushed, closed or
  fsynced, exactly as if the power went or the kernel killed it there.
- The names are the steps of the agent's write path (``CRASH_POINTS``), and three of the data
  centre's (``DATACENTER_CRASH_POINTS``: a worker holding a claim on a file or a job): each is placed between
  two operations whose order durability depends on (a write and its fsync, a commit and the file
  it promises, an upload and the mark that records it). ``tests/faults/test_power_loss.py``
  stops the agent at each of them and then throws away every write that was not yet durable.
- An unknown name or a malformed value in the variable is an error at the first point passed,
  so a test cannot silently crash nowhere.
"""

from __future__ import annotations

import os
import signal
import threading

CRASH_ENV = "CALLCOLLECT_CRASH_AT"

CRASH_POINTS = frozenset({
    "journal.written",  # units written to the segment, fsync not yet called
    "journal.synced",  # units durable, not yet parsed or spooled
    "spool.before_commit",  # a spool transaction's statements done, COMMIT not yet issued
    "spool.after_commit",  # a spool transaction committed (durable), the caller not yet told
    "batch.ledger_written",  # the batch's ledger entry durable, its spool row not yet committed
    "batch.committed",  # the batch committed in the spool, its outbox file not yet written
    "durable.renamed",  # atomic_write renamed the file into place, directory not yet fsynced
    "upload.put",  # the batch is at the data centre, not yet marked uploaded
    "upload.marked",  # marked uploaded, the file not yet moved from outbox/ to sent/
    "receipt.acknowledged",  # the spool marked the batch acknowledged, the ledger not yet
    "receipt.ledgered",  # the ledger holds the receipt, the remote receipt not yet removed
})  # fmt: skip

# The data centre's workers, for tests that kill one holding a claim (test_ingest_workers_killed).
DATACENTER_CRASH_POINTS = frozenset({
    "ingest.claimed",  # a landed file's claim committed, the file not yet read
    "ingest.before_commit",  # a file's calls, rollups and completion written, not committed
    "jobs.claimed",  # a store job's claim committed, its work not yet begun
})  # fmt: skip

_lock = threading.Lock()
_passed: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    value = os.environ.get(CRASH_ENV, "")
    if not value:
        return None
    name, _, count = value.rpartition(":")
    known = CRASH_POINTS | DATACENTER_CRASH_POINTS
    if name not in known or not count.isdigit() or int(count) < 1:
        raise ValueError(
            f"{CRASH_ENV}={value!r}: expected NAME:N with N >= 1 and NAME one of "
            + ", ".join(sorted(known))
        )
    return name, int(count)


def crash_point(name: str) -> None:
    """``SIGKILL`` this process if ``CRASH_ENV`` names this point and its count is reached."""
    target = _target()
    if target is None or target[0] != name:
        return
    with _lock:
        _passed[name] = _passed.get(name, 0) + 1
        if _passed[name] == target[1]:
            os.kill(os.getpid(), signal.SIGKILL)
