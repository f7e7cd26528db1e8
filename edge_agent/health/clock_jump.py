"""Notices a stepped wall clock: the time of day moved much more or less than real time did.

Contract:

- ``ClockJumpWatch.observe(now, monotonic)`` compares how far the wall clock (``now``) moved
  since the last call with how far monotonic time moved. When they differ by more than
  ``threshold_seconds`` (default 60 s: NTP slews far less; a step by hand, a bad RTC after a
  power cut or an NTP server fixed after a long drift steps more), it returns the jump in
  seconds (positive: the clock went forwards) and logs one warning; otherwise None.
- The first call only records. Nothing the agent stores depends on the wall clock being
  monotonic (numbers, batch names and receipts do not use it); the service uses a jump to
  re-check what it schedules by the wall clock (retention, the upload slot) at once.
"""

from __future__ import annotations

import logging
from datetime import datetime

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD_SECONDS = 60.0


class ClockJumpWatch:
    """Detects steps of the wall clock against monotonic time (see the module docstring)."""

    def __init__(self, *, threshold_seconds: float = DEFAULT_THRESHOLD_SECONDS) -> None:
        self.threshold_seconds = threshold_seconds
        self._last: tuple[datetime, float] | None = None

    def observe(self, now: datetime, monotonic: float) -> float | None:
        last, self._last = self._last, (now, monotonic)
        if last is None:
            return None
        wall = (now - last[0]).total_seconds()
        jump = wall - (monotonic - last[1])
        if abs(jump) <= self.threshold_seconds:
            return None
        log.warning(
            "the wall clock jumped %+.0f s (it moved %.0f s in %.0f s of real time); retention "
            "and the upload schedule are re-checked now; check NTP (timedatectl)",
            jump, wall, monotonic - last[1],
        )  # fmt: skip
        return jump
