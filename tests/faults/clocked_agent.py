"""``edge-agent run`` with a wall clock the test moves: ``python -m tests.faults.clocked_agent CONFIG OFFSET_FILE``.

Contract:

- Runs the agent exactly as ``edge_agent.commands.service.run_command`` does (same ``Service``,
  same signals, same logging), except that the service's clock is ``FileClock(OFFSET_FILE)``:
  the real UTC time plus the number of seconds written in OFFSET_FILE (a float, may be
  negative; a missing file is 0). The test rewrites the file to jump the clock, forwards or
  backwards, while the agent runs; the next reading of the clock sees the new offset.
- Everything in the agent that reads the wall clock takes it from the service's clock
  (``shared.clock``: spool and batch times, receipts, retention, journal pruning, heartbeats,
  upload slots). Monotonic time (timeouts, back-off) stays real, as on a host whose clock is
  stepped by NTP or by hand. Log lines keep the real time.
- Why not libfaketime (``test_clock_skew`` uses it for a fixed offset): changing its offset at
  run time needs ``FAKETIME_TIMESTAMP_FILE``, and libfaketime 0.9.10 with real monotonic time
  (``FAKETIME_DONT_FAKE_MONOTONIC=1``) makes Python's ``time.sleep`` fail with ``EINVAL``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from edge_agent import config as agent_config
from edge_agent.service import Service
from edge_agent.systemd_service import configure_logging
from tests.faults.site import ManagedProcess, Site

REPO_ROOT = Path(__file__).resolve().parents[2]


class FileClock:
    """Real UTC time plus the offset in seconds written in a file (re-read when it changes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        try:
            found = os.stat(self.path)
            changed: tuple[int, int] | None = (
                found.st_ino,
                found.st_mtime_ns,
            )  # a new file each write
        except FileNotFoundError:
            changed = None
        if changed != self._seen:
            text = self.path.read_text().strip() if changed is not None else ""
            self._offset = timedelta(seconds=float(text or 0))
            self._seen = changed
        return datetime.now(UTC) + self._offset


def write_offset(path: Path, seconds: float) -> None:
    """Set the agent's clock to real time + ``seconds`` (atomically: never half a number)."""
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(repr(float(seconds)))
    temp.replace(path)


def use_clocked_agent(site: Site) -> Path:
    """Make ``site.agent`` this launcher; the offset file the test writes (0 to begin with)."""
    offset_file = site.root / "agent" / "clock-offset"
    write_offset(offset_file, 0)
    site.agent = ManagedProcess(
        [sys.executable, "-m", "tests.faults.clocked_agent", str(site.agent_config),
         str(offset_file)],
        site.agent_log, env={"PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    return offset_file


def main(config_path: Path, offset_file: Path) -> None:
    configure_logging("INFO")
    service = Service(agent_config.load(config_path), clock=FileClock(offset_file))

    def stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: stopping", signum)
        service.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.run()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
