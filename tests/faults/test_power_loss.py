"""Power loss at 24 points of the agent's write path: unsynced writes are gone, nothing else is.

The agent's state directory is an ext4 file system on a loop device (``crash_disk.CrashDisk``:
its docstring says why a copy of the image is what a power cut leaves). The agent is started
with ``CALLCOLLECT_CRASH_AT=POINT:N`` (``shared.crashpoints``) and sends itself ``SIGKILL`` the
N-th time it passes POINT: between a journal write and its fsync, before and after a spool
commit, after a batch's ledger entry but before its spool row, after the spool row but before
the outbox file, after a rename but before the directory fsync, after an upload but before it is
recorded, after a receipt is recorded in the spool but before the ledger, and so on. Then the
power goes: the file system is replaced by the image as the device held it, and the agent
starts again on what survived, with the PBX still streaming and ingest running.

Judged from what was recorded, never from a moment: at the end the store holds exactly the
calls of the journal that survived, under the record ids its numbering gives (a journal number
handed out twice, for two lines, fails it: the first line's call would be in the store under a
number the journal now gives another line); batch numbers at the data centre have no gap and
no receipt was refused as a mismatch; every PBX line missing from the journal was on the wire or
in an unsynced write at a crash: each run of lost lines is the tail of one PBX connection
(``lost_at_connection_ends``), never lost elsewhere.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.crashpoints import CRASH_ENV, CRASH_POINTS
from shared.durable import fsync_dir
from tests.faults.crash_disk import CrashDisk, loop_devices_usable
from tests.faults.site import Site, assert_exactly_once, expected_call
from tests.faults.test_kill_agent import lost_at_connection_ends

pytestmark = [pytest.mark.faults, pytest.mark.sshd]

# (point, N): crash the N-th time the agent passes the point after a start; 24 crashes
CRASH_PLAN: list[tuple[str, int]] = [
    ("journal.written", 1), ("spool.before_commit", 1), ("batch.ledger_written", 1),
    ("durable.renamed", 1), ("upload.put", 1), ("receipt.acknowledged", 1),
    ("journal.synced", 2), ("spool.after_commit", 3), ("batch.committed", 1),
    ("upload.marked", 1), ("receipt.ledgered", 1), ("spool.before_commit", 6),
    ("journal.written", 4), ("spool.after_commit", 10), ("batch.ledger_written", 2),
    ("durable.renamed", 3), ("upload.put", 2), ("receipt.acknowledged", 2),
    ("journal.synced", 5), ("spool.before_commit", 25), ("batch.committed", 2),
    ("upload.marked", 2), ("receipt.ledgered", 2), ("spool.after_commit", 40),
]  # fmt: skip
CALLS = 6000
RATE = 30.0  # 200 s of calls: the PBX still streams at the last crash on a slow machine; then
# the rest is released at once (``release_all``)
CRASH_TIMEOUT = 60.0  # to reach a point after a start


@pytest.fixture
def crash_disk(tmp_path: Path) -> Iterator[CrashDisk]:
    """``tmp_path/site/agent/state`` (where ``make_site`` puts the state) on a ``CrashDisk``."""
    why_not = loop_devices_usable(tmp_path)
    if why_not is not None:
        pytest.skip(why_not)
    disk = CrashDisk(tmp_path / "state.img", tmp_path / "site" / "agent" / "state")
    try:
        yield disk.open()
    finally:
        disk.close()


def crash_at(site: Site, disk: CrashDisk, point: str, count: int) -> None:
    """Start the agent to die at ``point:count``; then the power cut."""
    site.agent.env = {CRASH_ENV: f"{point}:{count}"}
    site.agent.start()
    process = site.agent.process
    assert process is not None
    site.wait_until(lambda: process.poll() is not None, timeout=CRASH_TIMEOUT,
                    what=f"the agent to crash at {point}:{count}")  # fmt: skip
    assert process.returncode == -9, site.diagnosis(
        f"the agent exited {process.returncode} before reaching {point}:{count}"
    )
    site.agent.process = None
    disk.power_loss()


def test_power_loss_at_24_points_loses_only_unsynced_writes(
    crash_disk: CrashDisk, make_site: Callable[..., Site]
) -> None:
    site = make_site(calls=CALLS, rate_per_second=RATE, batch_max_records=20)
    assert site.state_dir == crash_disk.mountpoint
    crash_disk.sync()  # the enrolled identity, as an installer leaves it
    site.start_ingest()
    began = time.monotonic()
    for point, n in CRASH_PLAN:
        crash_at(site, crash_disk, point, n)
    site.agent.env = {}
    site.agent.start()
    site.simulator.release_all()
    site.wait_until(lambda: site.simulator.sent >= CALLS, timeout=180,
                    what="the PBX to send every call")  # fmt: skip
    site.wait_delivered(timeout=120)
    site.agent.stop()
    elapsed = time.monotonic() - began

    journalled = site.journalled()
    assert [seq for seq, _ in journalled] == list(range(1, len(journalled) + 1)), (
        "the surviving journal is not numbered 1..N without a gap"
    )
    by_line = {call.line: (index, call) for index, call in enumerate(site.calls)}
    strangers = [line for _, line in journalled if line not in by_line]
    assert not strangers, f"the journal holds lines the PBX never sent: {strangers[:3]}"
    twice = len(journalled) - len({line for _, line in journalled})
    assert twice == 0, f"{twice} PBX lines journalled twice after power losses"
    result = assert_exactly_once(
        site.engine, [expected_call(by_line[line][1], seq) for seq, line in journalled]
    )
    taken = {line for _, line in journalled}
    lost = [index for index, call in enumerate(site.calls) if call.line not in taken]
    problems = lost_at_connection_ends(lost, site.simulator.spans())
    assert not problems, site.diagnosis("lines lost beyond the crashes: " + "; ".join(problems))
    sequences = site.batch_sequences()
    assert sequences == list(range(1, len(sequences) + 1)), f"batch number gaps: {sequences}"
    log = site.agent_log.read_text(errors="replace")
    for refused in ("mismatch", "no such batch was sealed here"):
        assert refused not in log, site.diagnosis(f"a receipt was refused: {refused!r}")
    assert crash_disk.crashes == len(CRASH_PLAN)
    points = len({point for point, _ in CRASH_PLAN})
    print(
        f"\npower loss x{crash_disk.crashes} at {points} points: {result.calls} calls journalled "
        f"and stored once, 0 duplicated; {len(lost)} PBX lines lost in flight or unsynced at "
        f"the crashes; {len(sequences)} batches, no gap; {elapsed:.1f} s"
    )


def test_crash_plan_covers_every_point() -> None:
    assert {point for point, _ in CRASH_PLAN} == CRASH_POINTS
    assert len(CRASH_PLAN) >= 20


def test_the_crash_disk_keeps_what_was_synced_and_loses_the_rest(crash_disk: CrashDisk) -> None:
    """The emulation itself: fsync'd data and fsync'd names survive, nothing else does."""
    root = crash_disk.mountpoint
    synced, unsynced, renamed = root / "synced", root / "unsynced", root / "renamed"
    with synced.open("wb") as out:
        out.write(b"kept")
        out.flush()
        os.fsync(out.fileno())
    fsync_dir(root)
    with synced.open("ab") as out:
        out.write(b" and lost")  # appended after the last fsync
    unsynced.write_bytes(b"lost")
    (root / "before").write_bytes(b"data")
    with (root / "before").open("rb+") as out:
        os.fsync(out.fileno())
    (root / "before").replace(renamed)  # the rename is not made durable (no directory fsync)
    crash_disk.power_loss()
    # ext4 may have committed the grown size with the other file's fsync, but never the bytes
    assert synced.read_bytes().rstrip(b"\0") == b"kept"
    assert not unsynced.exists() or unsynced.read_bytes().strip(b"\0") == b""
    assert not renamed.exists()
    assert (root / "before").exists()
