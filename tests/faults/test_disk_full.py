"""A real full disk: the agent's state on a 32 MB tmpfs, a PBX feeding it until full and beyond.

The state directory is a size-limited ``tmpfs`` the test mounts (and unmounts, whatever
happens). A ballast file placed there first leaves little room; the data centre's ingest is
down, so nothing is acknowledged and nothing may leave the disk. The PBX sends more than fits:
journal appends fail with a real ``ENOSPC`` (rolled back; the source keeps what it read and
offers it again), SQLite fails with "database or disk is full", sealing fails, and the quota
alarm, which measures free disk, climbs. Then the ballast is deleted and ingest started: every
call the PBX sent reaches the store exactly once (the record ids ``expected`` derives assume
journal sequence n for the n-th line, so a reused or skipped number fails it too).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.site import Site, assert_exactly_once

pytestmark = [pytest.mark.faults, pytest.mark.sshd]

TMPFS_SIZE = "32m"  # room for every call once the ballast goes (the quota stays 16 MB)
LEAVE_FREE = 1_200_000  # bytes the ballast leaves: less than the calls below need
CALLS = 3000


@pytest.fixture
def small_state_dir(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path/site/agent/state`` (where ``make_site`` puts the state) on a small tmpfs."""
    state = tmp_path / "site" / "agent" / "state"
    state.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700",
                              "tmpfs", str(state)], capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {mounted.stderr}")
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def place_ballast(state: Path) -> Path:
    """Fill the file system but ``LEAVE_FREE`` bytes with one file the test deletes later."""
    disk = os.statvfs(state)
    size = disk.f_bavail * disk.f_frsize - LEAVE_FREE
    ballast = state / "ballast.bin"
    with ballast.open("wb") as out:
        out.truncate(0)
        chunk = b"\0" * 65536
        while size > 0:
            size -= out.write(chunk[: min(size, len(chunk))])
    return ballast


def test_a_full_disk_loses_and_duplicates_nothing_and_raises_the_alarm(
    small_state_dir: Path, make_site: Callable[..., Site]
) -> None:
    site = make_site(calls=CALLS, rate_per_second=3000.0, batch_max_records=200)
    assert site.state_dir == small_state_dir
    ballast = place_ballast(small_state_dir)
    try:
        site.agent.start()
        site.wait_log("append failed, rolling back", timeout=90)  # a real ENOSPC, rolled back
        site.wait_until(
            lambda: re.search(r"spool quota (critical|full):", site.agent_log.read_text()) is not None,
            timeout=30, what="the quota alarm (free disk) at critical or full",
        )  # fmt: skip
        site.wait_log("holding", timeout=30)  # the source reported the units it kept
        ballast.unlink()  # room again
        site.start_ingest()
        site.wait_until(lambda: site.simulator.sent >= CALLS, timeout=120,
                        what="the PBX to send every call")  # fmt: skip
        drained = site.wait_delivered(timeout=180)
        result = assert_exactly_once(site.engine, site.expected())
    finally:
        site.close()  # stop the agent before the file system goes
    log = site.agent_log.read_text()
    failures = log.count("append failed, rolling back")
    alarms = re.findall(r"spool quota (ok|warning|critical|full):", log)
    assert "Traceback" not in log.split("append failed", 1)[0]
    print(
        f"\ndisk full: {TMPFS_SIZE} tmpfs, {LEAVE_FREE} bytes left by the ballast; {failures} "
        f"journal appends failed with ENOSPC and were rolled back; alarms {' -> '.join(alarms)}; "
        f"delivered {drained:.1f} s after room returned: {result.calls} calls, 0 lost, "
        "0 duplicated"
    )
